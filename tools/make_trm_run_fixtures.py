"""Fixtures in the layout of a run of the official TRM trainer (dev-only tool; needs torch, pydantic, einops).

The official TRM code (SamsungSAILMontreal/TinyRecursiveModels at e7b6871) and its reproduction
gaoxin492/TinyRecursiveModels (whose runs are published as the Sanjin2024/TinyRecursiveModels-* and
TinyRecursiveModel-Maze-Hard Hub repos; its models/ folder is identical to the official one, its pretrain.py differs
only in how a missing evaluator is reported) write a run folder ``checkpoints/<Project>-ACT-torch/<run>/`` holding:

* ``step_<N>``: ``torch.save(model.state_dict())`` of the EMA copy of the compiled ACTLossHead (``ema=True``, as
  every published run used), so names are ``_orig_mod.model.inner.<name>``, one file per evaluation;
* ``all_config.yaml``: ``yaml.dump(PretrainConfig.model_dump())`` (written only when wandb runs), with
  ``data_paths`` (a list) and the arch fields (dataset-derived fields such as seq_len absent);
* copies of the model and loss source files (``trm.py``, ``losses.py``), which converters ignore.

This script builds such folders for tiny models with the trainer's own model classes (imported from the tree given
with --official, never copied) and records what that code computes on example puzzles, so tests can check that
hrm-mlx reproduces it. Every case computes in float32 (arch override forward_dtype=float32; the published runs
used bfloat16) so the comparison is exact to float32 rounding.

    git --git-dir=<mirror of gaoxin492/TinyRecursiveModels> archive HEAD models | tar -x -C /tmp/trm_repro
    python tools/make_trm_run_fixtures.py --official /tmp/trm_repro --out tests/fixtures/trm_runs

Output per case, ``<out>/<case>/``:

* ``checkpoints/<Project>-ACT-torch/<run>/step_<N>`` (the weights the test reproduces) and an older
  ``step_<N/2>`` (other weights: a converter must take the highest step), ``all_config.yaml``, and
  placeholder ``trm.py``/``losses.py`` standing for the copied sources (their content is not the official code);
* ``expected.npz``: ``inputs`` [B, S] (example puzzles in the official encoding), and per ACT step t of the
  official evaluation (model.eval(), halt_max_steps steps): ``logits`` [T, B, S, V], ``q_halt_logits`` [T, B],
  ``predictions`` [T, B, S] (argmax of the logits).
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parent.parent
SUDOKU = [REPO / "examples" / "sudoku.txt"]
MAZE = REPO / "examples" / "maze.txt"

COMMON = dict(batch_size=2, H_layers=0, L_layers=1, hidden_size=16, expansion=1, num_heads=2,
              halt_max_steps=3, halt_exploration_prob=0.1, rms_norm_eps=1e-5, rope_theta=10000.0,
              forward_dtype="float32", no_ACT_continue=True, puzzle_emb_ndim=16, num_puzzle_identifiers=1)

CASES = {
    # Sanjin2024/TinyRecursiveModels-Sudoku-Extreme-att: arch=trm, L_layers=2, H_cycles=3, L_cycles=6 (smaller here)
    "sudoku-att": dict(data_path="data/sudoku-extreme-1k-aug-1000", run="pretrain_att_sudoku", step=1302,
                       arch=dict(H_cycles=2, L_cycles=2, pos_encodings="rope", mlp_t=False, puzzle_emb_len=2),
                       seq_len=81, vocab_size=11, seed=11),
    # ...-Sudoku-Extreme-mlp: arch.mlp_t=True arch.pos_encodings=none
    "sudoku-mlp": dict(data_path="data/sudoku-extreme-1k-aug-1000", run="pretrain_mlp_t_sudoku", step=1302,
                       arch=dict(H_cycles=2, L_cycles=3, pos_encodings="none", mlp_t=True, puzzle_emb_len=1),
                       seq_len=81, vocab_size=11, seed=12),
    # TinyRecursiveModel-Maze-Hard: H_cycles=3, L_cycles=4, on 30x30 mazes; an 11x11 canvas here
    "maze": dict(data_path="data/maze-11x11-hard-1k", run="pretrain_att_maze", step=2604,
                 arch=dict(H_cycles=2, L_cycles=2, pos_encodings="rope", mlp_t=False, puzzle_emb_len=1),
                 seq_len=121, vocab_size=6, seed=13),
}

TRM_NAME = "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1"
LOSS = {"name": "losses@ACTLossHead", "loss_type": "stablemax_cross_entropy"}


def sudoku_inputs() -> np.ndarray:
    """Official Sudoku encoding (dataset/build_sudoku_dataset.py): blank -> 1, digit d -> d + 1."""
    rows = []
    for path in SUDOKU:
        text = "".join(line.strip() for line in path.read_text().splitlines() if line.strip())
        rows.append([1 if c == "." else int(c) + 1 for c in text])
    rows.append([1] * 81)  # an empty grid: the model must fill every cell
    return np.array(rows, dtype=np.int32)


def maze_inputs(side: int) -> np.ndarray:
    """Official maze encoding (dataset/build_maze_dataset.py: "# SGo" -> 1..5, 0 pad), top-left of the canvas."""
    grid = [line for line in MAZE.read_text().splitlines() if line]
    canvas = np.zeros((side, side), dtype=np.int32)
    for r, line in enumerate(grid):
        canvas[r, :len(line)] = ["# SGo".index(c) + 1 for c in line]
    blank = canvas.copy()
    blank[blank == 4] = 2  # the same maze without its goal
    return np.stack([canvas.reshape(-1), blank.reshape(-1)])


def all_config(spec: dict, arch: dict, project: str) -> dict:
    """What pretrain.save_code_and_config dumps: PretrainConfig.model_dump() (yaml.dump sorts the keys)."""
    return {
        "arch": {"name": TRM_NAME, "loss": dict(LOSS), **arch},
        "data_paths": [spec["data_path"]], "data_paths_test": [], "evaluators": [],
        "global_batch_size": 4608, "epochs": 100000, "lr": 1e-4, "lr_min_ratio": 1.0, "lr_warmup_steps": 2000,
        "weight_decay": 1.0, "beta1": 0.9, "beta2": 0.95, "puzzle_emb_lr": 1e-4, "puzzle_emb_weight_decay": 1.0,
        "project_name": project, "run_name": spec["run"], "load_checkpoint": None,
        "checkpoint_path": f"checkpoints/{project}/{spec['run']}", "seed": 0, "checkpoint_every_eval": False,
        "eval_interval": 5000, "min_eval_interval": 0, "eval_save_outputs": [], "ema": True, "ema_rate": 0.999,
        "freeze_weights": False,
    }


def perturb(inner, hidden: int, seed: int) -> None:
    """The official q_head init (zeros, bias -5) never halts and the puzzle table starts at zero; random values
    make the test see both."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        inner.q_head.weight.copy_(torch.randn(inner.q_head.weight.shape, generator=g) * (1.5 / math.sqrt(hidden)))
        inner.q_head.bias.copy_(torch.tensor([0.3, -0.2]) + 0.2 * torch.randn(2, generator=g))
        table = inner.puzzle_emb.weights
        table.copy_(torch.randn(table.shape, generator=g) / math.sqrt(hidden))


def saved_state_dict(trm, losses, ema, cfg: dict, seed: int) -> tuple[dict, object]:
    """pretrain.py with ema=True: torch.compile(ACTLossHead(model)), EMA registered on it, and at checkpoint time
    the EMA copy's state dict (an untrained EMA equals the weights)."""
    torch.manual_seed(seed)
    model = trm.TinyRecursiveReasoningModel_ACTV1(dict(cfg))
    perturb(model.inner, cfg["hidden_size"], seed + 1)
    head = losses.ACTLossHead(model, loss_type=LOSS["loss_type"])
    compiled = torch.compile(head)
    helper = ema.EMAHelper(mu=0.999)
    helper.register(compiled)
    state = {k: v.detach().clone() for k, v in helper.ema_copy(compiled).state_dict().items()}
    assert all(k.startswith("_orig_mod.model.inner.") for k in state), list(state)[:3]
    return state, head


def evaluate(head, inputs: np.ndarray, steps: int) -> dict:
    """The official evaluation loop (pretrain.evaluate): carry from initial_carry, halt_max_steps calls."""
    batch = {"inputs": torch.from_numpy(inputs), "labels": torch.from_numpy(inputs.astype(np.int64)),
             "puzzle_identifiers": torch.zeros(len(inputs), dtype=torch.int32)}
    head.eval()
    out = {"logits": [], "q_halt_logits": [], "predictions": []}
    with torch.no_grad():
        carry = head.initial_carry(batch)
        for _ in range(steps):
            carry, _, _, outputs, _ = head(return_keys=["logits", "q_halt_logits"], carry=carry, batch=batch)
            out["logits"].append(outputs["logits"].float().numpy())
            out["q_halt_logits"].append(outputs["q_halt_logits"].float().numpy())
            out["predictions"].append(outputs["logits"].argmax(-1).numpy().astype(np.int32))
    return {k: np.stack(v) for k, v in out.items()}


def build(trm, losses, ema, name: str, spec: dict, out_dir: Path) -> None:
    arch = {**{k: v for k, v in COMMON.items() if k not in ("batch_size", "num_puzzle_identifiers")}, **spec["arch"]}
    cfg = {**COMMON, **spec["arch"], "seq_len": spec["seq_len"], "vocab_size": spec["vocab_size"], "causal": False}
    project = f"{Path(spec['data_path']).name.capitalize()}-ACT-torch"
    run = out_dir / name / "checkpoints" / project / spec["run"]
    run.mkdir(parents=True, exist_ok=True)

    older, _ = saved_state_dict(trm, losses, ema, cfg, spec["seed"] + 100)
    torch.save(older, run / f"step_{spec['step'] // 2}")
    state, head = saved_state_dict(trm, losses, ema, cfg, spec["seed"])
    torch.save(state, run / f"step_{spec['step']}")
    (run / "all_config.yaml").write_text(yaml.dump(all_config(spec, arch, project)))
    for source in ("trm.py", "losses.py"):
        (run / source).write_text("# placeholder for the source file the trainer copies beside its checkpoints\n")

    inputs = sudoku_inputs() if spec["vocab_size"] == 11 else maze_inputs(math.isqrt(spec["seq_len"]))
    expected = evaluate(head, inputs, cfg["halt_max_steps"])
    np.savez(out_dir / name / "expected.npz", inputs=inputs, **expected)
    changed = (np.diff(expected["predictions"], axis=0) != 0).sum()
    print(f"{name}: {run.relative_to(out_dir)}; q_halt per step {np.round(expected['q_halt_logits'], 3).tolist()}; "
          f"{changed} predicted cells change between steps")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="a tree with the trainer's models/ folder")
    parser.add_argument("--out", type=Path, required=True, help="e.g. tests/fixtures/trm_runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    sys.path.insert(0, str(args.official.resolve()))
    trm = importlib.import_module("models.recursive_reasoning.trm")
    losses = importlib.import_module("models.losses")
    ema = importlib.import_module("models.ema")
    for name, spec in CASES.items():
        build(trm, losses, ema, name, spec, args.out)


if __name__ == "__main__":
    main()
