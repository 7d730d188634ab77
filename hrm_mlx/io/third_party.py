"""Checkpoints written by other training code: where they sit in a folder or Hub repo, and nano-trm's Lightning
checkpoints as an hrm-mlx TRM.

Layouts (learned from each project's save code; tests/fixtures/trm_runs and tests/fixtures/nano_trm are made with
that code, see tools/make_trm_run_fixtures.py and tools/make_nano_trm_fixtures.py):

* The official HRM and TRM trainers and their reproductions (gaoxin492/TinyRecursiveModels, whose runs are the
  Sanjin2024/TinyRecursiveModels-* Hub repos): ``torch.save(state_dict)`` files named ``step_<N>`` (one per
  evaluation; the highest N is the newest) in a run folder ``checkpoints/<Project>-ACT-torch/<run>/`` with
  ``all_config.yaml`` beside them; the sapientinc/HRM-checkpoint-* repos name the file ``checkpoint``.
* nano-trm (olivkoch/nano-trm, PyTorch Lightning): ``<run>/checkpoints/*.ckpt`` (ModelCheckpoint's ``last.ckpt``,
  and ``epoch_<EEE>.ckpt`` for the best epoch when the trainer's global step advances), each a full Lightning
  checkpoint whose ``hyper_parameters`` hold the architecture.

``locate`` finds the checkpoint file in a folder: the folder's own ``checkpoint``, highest ``step_<N>`` or Lightning
checkpoint, else the one folder below it that holds such files (a whole run tree or Hub repo can be passed).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hrm_mlx.errors import HrmMlxError

OFFICIAL_CHECKPOINT = "checkpoint"
LIGHTNING_SUFFIX = ".ckpt"
_STEP = re.compile(r"step_(\d+)")

# Hub repos whose architecture is known without their all_config.yaml: repo -> (recipe, data path of the run).
# sapientinc: the official ARC-2 repo lacks the file (README: ARC-2 overrides only the data path). The
# Sanjin2024 repos (and their gaoxin492 mirrors) hold runs of gaoxin492/TinyRecursiveModels, whose README gives
# each run's command: arch=trm with L_layers=2 and the cycles and mlp_t settings of the matching recipe.
KNOWN_REPOS = {
    "sapientinc/HRM-checkpoint-ARC-2": ("hrm-arc-1", "data/arc-2-aug-1000"),
    **{f"{owner}/{name}": run for owner in ("Sanjin2024", "gaoxin492") for name, run in {
        "TinyRecursiveModels-Sudoku-Extreme-att": ("trm-sudoku-extreme-1k-att", "data/sudoku-extreme-1k-aug-1000"),
        "TinyRecursiveModels-Sudoku-Extreme-mlp": ("trm-sudoku-extreme-1k-mlp", "data/sudoku-extreme-1k-aug-1000"),
        "TinyRecursiveModel-Maze-Hard": ("trm-maze-30x30-hard-1k", "data/maze-30x30-hard-1k"),
        "TinyRecursiveModels-ARC-AGI-1": ("trm-arc-1", "data/arc1concept-aug-1000"),
        "TinyRecursiveModels-ARC-AGI-2": ("trm-arc-2", "data/arc2concept-aug-1000"),
    }.items()},
}

# What a Hub download fetches besides hrm-mlx's own files: the layouts above at the top or in subfolders, and the
# model card (its license travels to a converted model's card). Their evaluation dumps are skipped.
HUB_PATTERNS = [OFFICIAL_CHECKPOINT, "*/checkpoint", "step_*", "*/step_*", "all_config.yaml", "*/all_config.yaml",
                f"*{LIGHTNING_SUFFIX}", "README.md"]
HUB_IGNORE = ["*_all_preds.*"]


def _is_checkpoint_name(name: str) -> bool:
    return name == OFFICIAL_CHECKPOINT or bool(_STEP.fullmatch(name)) or name.endswith(LIGHTNING_SUFFIX)


def _in_folder(folder: Path) -> Path | None:
    files = [p for p in folder.iterdir() if p.is_file() and _is_checkpoint_name(p.name)]
    if (folder / OFFICIAL_CHECKPOINT).is_file():
        return folder / OFFICIAL_CHECKPOINT
    steps = [(int(_STEP.fullmatch(p.name).group(1)), p) for p in files if _STEP.fullmatch(p.name)]
    if steps:
        return max(steps)[1]
    lightning = sorted(p for p in files if p.name.endswith(LIGHTNING_SUFFIX))
    best = [p for p in lightning if p.name != "last" + LIGHTNING_SUFFIX]
    if len(best) == 1:  # ModelCheckpoint keeps the best epoch (save_top_k=1) beside last.ckpt
        return best[0]
    if len(lightning) > len(best):
        return folder / ("last" + LIGHTNING_SUFFIX)
    if best:
        raise HrmMlxError(f"{folder}: {len(best)} Lightning checkpoints ({', '.join(p.name for p in best[:3])}"
                          f"{', ...' if len(best) > 3 else ''}); pass one file")
    return None


def locate(source: Path) -> Path | None:
    """The checkpoint file that ``source`` (a file or a folder) stands for, or None when it holds none."""
    if source.is_file():
        return source
    if not source.is_dir():
        return None
    found = _in_folder(source)
    if found is not None:
        return found
    folders = sorted({p.parent for p in source.rglob("*") if p.is_file() and _is_checkpoint_name(p.name)})
    if len(folders) > 1:
        listed = ", ".join(str(f.relative_to(source)) for f in folders[:4])
        raise HrmMlxError(f"{source}: checkpoints in {len(folders)} folders ({listed}{', ...' if len(folders) > 4 else ''}"
                          "); pass the folder of the one to use")
    return _in_folder(folders[0]) if folders else None


# -------------------------------------------------------------------------------------------------- nano-trm


def is_lightning(extras: dict) -> bool:
    """Whether a checkpoint's top level (torch_checkpoint extras) is a PyTorch Lightning checkpoint."""
    return "pytorch-lightning_version" in extras or "hyper_parameters" in extras


_NANO_REQUIRED = ("hidden_size", "num_layers", "num_heads", "H_cycles", "L_cycles", "N_supervision", "vocab_size",
                  "seq_len")
_NANO_NAMES = {"input_embedding.embedding_weight": "embed_tokens.weight", "z_H_init": "H_init",
               "z_L_init": "L_init", "puzzle_emb.weights": "puzzle_emb.weight"}


def nano_trm(arrays: dict[str, np.ndarray], dtypes: dict[str, str], extras: dict, where: str,
             notes: list[str]) -> tuple[dict, dict[str, np.ndarray], dict[str, str]]:
    """A nano-trm TRMModule checkpoint as (hrm-mlx TRM config fields, weights with our names, their stored
    dtypes). nano-trm's TRM is the official recursion with other names, a halt-only Q head, and the Sudoku
    vocabulary shifted by a separator token; variants hrm-mlx has no layer for are refused."""
    hp = extras.get("hyper_parameters")
    if not isinstance(hp, dict):
        raise HrmMlxError(f"{where}: a Lightning checkpoint without hyper_parameters; not a nano-trm TRMModule")
    missing = [k for k in _NANO_REQUIRED if k not in hp]
    if missing or not any(k.startswith("lenet.") for k in arrays):
        raise HrmMlxError(f"{where}: not a nano-trm TRMModule checkpoint (hyper_parameters lack "
                          f"{', '.join(missing) or 'nothing'}; weights {'have' if missing else 'lack'} lenet.*)")
    for flag, layer in (("use_conv_swiglu", "the convolutional SwiGLU (use_conv_swiglu)"),
                        ("use_board_swiglu", "the board-aware SwiGLU (use_board_swiglu)")):
        if hp.get(flag):
            raise HrmMlxError(f"{where}: nano-trm's {layer} has no hrm-mlx layer; only its standard blocks convert")
    if hp.get("pos_emb_type") == "2d":
        raise HrmMlxError(f"{where}: nano-trm's 2D rotary embedding (pos_emb_type 2d) has no hrm-mlx layer; "
                          "1D RoPE and no positions convert")
    emb_dim = int(hp.get("puzzle_emb_dim") or 0)
    emb_len = int(hp.get("puzzle_emb_len") or 0) if emb_dim else 0
    if emb_dim and not emb_len:
        raise HrmMlxError(f"{where}: puzzle_emb_dim {emb_dim} with puzzle_emb_len 0 (nano-trm's module and blocks "
                          "disagree on the prefix length there)")

    weights = {}
    for name, value in arrays.items():
        name = _NANO_NAMES.get(name, name)
        weights["L_level." + name[len("lenet."):] if name.startswith("lenet.") else name] = value
    stored = {_NANO_NAMES.get(k, k).replace("lenet.", "L_level.", 1): v for k, v in dtypes.items()}
    # A halt logit only (nano-trm halts on q_halt > 0 and learns no continue value): hrm-mlx's Q head also has
    # a continue row, which a no_ACT_continue model never reads; it is zero.
    for name in ("q_head.weight", "q_head.bias"):
        value = weights[name]
        weights[name] = np.concatenate([value, np.zeros_like(value)], axis=0)

    vocab, seq_len = int(hp["vocab_size"]), int(hp["seq_len"])
    if vocab == 12 and seq_len == 81 and hp.get("max_grid_size", 9) == 9:
        # Sudoku-Extreme in nano-trm's encoding (0 pad, 1 separator, 2 blank, 3-11 digits): the official
        # encoding drops the separator, which a 9x9 grid never holds. Reordering the rows of the embedding and
        # the output head keeps every other logit exactly.
        keep = [0, *range(2, 12)]
        for name in ("embed_tokens.weight", "lm_head.weight"):
            weights[name] = weights[name][keep]
        vocab = 11
        notes.append("Sudoku tokens mapped from nano-trm's encoding to the official one (its separator token "
                     "dropped)")
    forward_dtype = hp.get("forward_dtype") or stored.get("H_init", "float32")
    config = {
        "family": "trm", "seq_len": seq_len, "vocab_size": vocab, "H_cycles": int(hp["H_cycles"]),
        "L_cycles": int(hp["L_cycles"]), "H_layers": 0, "L_layers": int(hp["num_layers"]),
        "hidden_size": int(hp["hidden_size"]), "expansion": float(hp.get("ffn_expansion", 2)),
        "num_heads": int(hp["num_heads"]), "pos_encodings": "rope" if hp.get("pos_emb_type") == "1d" else "none",
        "rope_theta": float(hp.get("rope_theta", 10000)), "rms_norm_eps": 1e-5,
        "halt_max_steps": int(hp.get("N_supervision_val") or hp["N_supervision"]),
        "halt_exploration_prob": float(hp.get("halt_exploration_prob", 0.1)), "puzzle_emb_ndim": emb_dim,
        "puzzle_emb_len": emb_len, "forward_dtype": forward_dtype if forward_dtype in ("bfloat16", "float16")
        else "float32", "loss_type": "stablemax_cross_entropy", "mlp_t": bool(hp.get("use_mlp_t")),
        "no_ACT_continue": True,
    }
    if hp.get("N_supervision_val") not in (None, hp["N_supervision"]):
        notes.append(f"halt_max_steps {config['halt_max_steps']} from N_supervision_val (trained with up to "
                     f"{hp['N_supervision']})")
    return config, weights, stored
