"""Fixtures in the layout of a nano-trm training run (dev-only tool; needs torch, lightning, hydra-core, omegaconf,
rich, einops and scikit-learn, which nano-trm's modules import).

nano-trm (github.com/olivkoch/nano-trm) trains TRMs with PyTorch Lightning: ``src/nn/train.py`` instantiates
``src.nn.models.trm.TRMModule`` (``save_hyperparameters()``: every constructor argument, the dataset-derived
vocab_size, seq_len = max_grid_size**2 and num_puzzles included) and a Trainer whose ModelCheckpoint callback
(configs/callbacks/default.yaml) writes ``<output_dir>/checkpoints/epoch_<EEE>.ckpt`` (the best by val/accuracy,
save_top_k=1) and ``last.ckpt``, full Lightning checkpoints: ``state_dict`` (the module's training weights and
persistent buffers: ``input_embedding.embedding_weight``, ``lenet.layers.<i>...``, ``lm_head.weight``,
``q_head.weight`` [1, D] and ``q_head.bias`` [1] (a halt logit only), ``z_H_init``/``z_L_init`` in the forward
dtype, ``puzzle_emb.weights``), ``hyper_parameters``, optimizer states and callback states (the EMA callback's
shadow weights). Its evaluators load a checkpoint with ``TRMModule.load_from_checkpoint``, i.e. ``state_dict``.

This script runs that machinery (nano-trm's own TRMModule, EMACallback and a Lightning Trainer with the
ModelCheckpoint settings of its default callbacks; a few CPU training steps on tiny random data) for two tiny
models shaped like its two reproduced experiments, then records what ``load_from_checkpoint`` + the module's
forward compute on example puzzles:

* ``sudoku``: experiment trm_sudoku_extreme_1k_aug_1k (mlp_t, pos_emb_type "null", no puzzle embedding;
  vocabulary 12: 0 pad, 1 separator, 2 blank, 3-11 digits 1-9, scripts/data/build_sudoku_extreme_dataset.py);
* ``maze``: experiment trm_maze (attention, 1D RoPE, puzzle embedding; "# SGo" -> 1..5, 0 pad,
  scripts/data/build_maze_dataset.py) on an 11x11 canvas instead of 30x30.

nano-trm's code is imported from the tree given with --nano (``git archive HEAD src``), never copied:

    python tools/make_nano_trm_fixtures.py --nano /tmp/nano-trm --out tests/fixtures/nano_trm

Output per case, ``<out>/<case>/``: the ``checkpoints/*.ckpt`` files as the
Trainer wrote them (only ``last.ckpt``: nano-trm steps its optimizers directly, past Lightning's optimizer
wrappers, so the trainer's global step stays 0 and ModelCheckpoint skips its top-k saves; a real run gets the same
files), and ``expected.npz``: ``inputs`` [B, S] (nano-trm's encoding), ``checkpoint`` (the file the
numbers come from), and per ACT step of the module's evaluation (N_supervision_val steps): ``logits`` [T, B, S, V],
``q_halt_logits`` [T, B], ``predictions`` [T, B, S].
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent

COMMON = dict(hidden_size=16, num_layers=1, num_heads=2, H_cycles=2, L_cycles=2, N_supervision=3,
              N_supervision_val=3, ffn_expansion=1, learning_rate=3e-3, learning_rate_emb=1e-2, weight_decay=0.1,
              warmup_steps=1, halt_exploration_prob=0.1, rope_theta=10000, lr_min_ratio=1.0, use_conv_swiglu=False,
              use_board_swiglu=False, use_muon=False, pad_value=0, batch_size=4,
              # train.py passes hydra's run folder as a pathlib.Path, so real checkpoints pickle one in their
              # hyper_parameters (paths.log_dir /tmp/logs/, run dir <task_name>/runs/<date>_<time>)
              output_dir=Path("/tmp/logs/train/runs/2025-11-02_10-00-00"))

CASES = {
    "sudoku": dict(hparams=dict(puzzle_emb_dim=0, puzzle_emb_len=0, pos_emb_type="null", use_mlp_t=True,
                                vocab_size=12, seq_len=81, max_grid_size=9, num_puzzles=8), seed=21),
    "maze": dict(hparams=dict(puzzle_emb_dim=24, puzzle_emb_len=2, pos_emb_type="1d", use_mlp_t=False,
                              vocab_size=6, seq_len=121, max_grid_size=11, num_puzzles=8), seed=22),
}


def sudoku_inputs() -> np.ndarray:
    """nano-trm's Sudoku-Extreme encoding: blank -> 2, digit d -> d + 2."""
    text = "".join(line.strip() for line in (REPO / "examples" / "sudoku.txt").read_text().splitlines())
    return np.array([[2 if c == "." else int(c) + 2 for c in text], [2] * 81], dtype=np.int64)


def maze_inputs(side: int) -> np.ndarray:
    """nano-trm's maze encoding ("# SGo" -> 1..5, 0 pad), the maze at the top-left of the canvas."""
    grid = [line for line in (REPO / "examples" / "maze.txt").read_text().splitlines() if line]
    canvas = np.zeros((side, side), dtype=np.int64)
    for r, line in enumerate(grid):
        canvas[r, :len(line)] = ["# SGo".index(c) + 1 for c in line]
    return canvas.reshape(1, -1)


def random_batches(rng: np.random.RandomState, hp: dict, n: int) -> list[dict]:
    low = 2 if hp["vocab_size"] == 12 else 1
    return [{"input": torch.from_numpy(rng.randint(low, hp["vocab_size"], hp["seq_len"]).astype(np.int64)),
             "output": torch.from_numpy(rng.randint(low, hp["vocab_size"], hp["seq_len"]).astype(np.int64)),
             "puzzle_identifiers": torch.tensor(0, dtype=torch.int64)} for _ in range(n)]


def train(nano, lightning, name: str, spec: dict, out: Path) -> list[Path]:
    """A few epochs of nano-trm's training loop with its checkpoint and EMA callbacks."""
    from torch.utils.data import DataLoader

    hp = {**COMMON, **spec["hparams"]}
    data = random_batches(np.random.RandomState(spec["seed"]), hp, 8)

    class TinyData(lightning.LightningDataModule):
        batch_size = hp["batch_size"]
        train_dataset = data

        def train_dataloader(self):
            return DataLoader(data, batch_size=self.batch_size, shuffle=False, drop_last=True)

        def val_dataloader(self):
            return DataLoader(data[:4], batch_size=self.batch_size)

    torch.manual_seed(spec["seed"])
    model = nano["trm"].TRMModule(**hp)
    checkpoints = out / name / "checkpoints"
    callbacks = [
        lightning.pytorch.callbacks.ModelCheckpoint(dirpath=checkpoints, filename="epoch_{epoch:03d}",
                                                    monitor="val/accuracy", mode="max", save_last=True,
                                                    auto_insert_metric_name=False, save_top_k=1),
        nano["ema"].EMACallback(decay=0.999, use_ema_for_validation=True, use_ema_for_test=True),
    ]
    trainer = lightning.Trainer(max_epochs=3, accelerator="cpu", devices=1, callbacks=callbacks, logger=False,
                                enable_progress_bar=False, enable_model_summary=False, check_val_every_n_epoch=1,
                                num_sanity_val_steps=0)
    trainer.fit(model=model, datamodule=TinyData())
    return sorted(checkpoints.glob("*.ckpt"))


def reference(nano, checkpoint: Path, inputs: np.ndarray) -> dict:
    """What nano-trm's evaluators do: TRMModule.load_from_checkpoint, eval mode, the module's ACT forward."""
    # weights_only=False: torch >= 2.6 refuses the pathlib.Path in hyper_parameters otherwise
    model = nano["trm"].TRMModule.load_from_checkpoint(str(checkpoint), map_location="cpu", weights_only=False)
    model.eval()
    batch = {"input": torch.from_numpy(inputs), "output": torch.from_numpy(inputs),
             "puzzle_identifiers": torch.zeros(len(inputs), dtype=torch.int64)}
    out = {"logits": [], "q_halt_logits": [], "predictions": []}
    with torch.no_grad():
        carry = model.initial_carry(batch)
        for _ in range(model.hparams.N_supervision_val):
            carry, outputs = model.forward(carry, batch)
            out["logits"].append(outputs["logits"].float().numpy())
            out["q_halt_logits"].append(outputs["q_halt_logits"].float().numpy())
            out["predictions"].append(outputs["logits"].argmax(-1).numpy().astype(np.int32))
    return {k: np.stack(v) for k, v in out.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nano", type=Path, required=True, help="a tree with nano-trm's src/ folder")
    parser.add_argument("--out", type=Path, required=True, help="e.g. tests/fixtures/nano_trm")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sys.path.insert(0, str(args.nano.resolve()))
    import lightning

    nano = {"trm": importlib.import_module("src.nn.models.trm"), "ema": importlib.import_module("src.nn.callbacks.ema")}
    for name, spec in CASES.items():
        files = train(nano, lightning, name, spec, args.out)
        # Only last.ckpt appears: nano-trm steps its optimizers past Lightning's wrappers, so the global step
        # stays 0 and ModelCheckpoint never saves a top-k file (its real runs share this).
        best = next((f for f in files if f.name != "last.ckpt"), files[-1])
        hp = spec["hparams"]
        inputs = sudoku_inputs() if hp["vocab_size"] == 12 else maze_inputs(hp["max_grid_size"])
        expected = reference(nano, best, inputs)
        np.savez(args.out / name / "expected.npz", inputs=inputs.astype(np.int32), checkpoint=best.name, **expected)
        changed = (np.diff(expected["predictions"], axis=0) != 0).sum()
        print(f"{name}: {[f.name for f in files]}, reference from {best.name}; q_halt "
              f"{np.round(expected['q_halt_logits'], 3).tolist()}; {changed} predicted cells change between steps")


if __name__ == "__main__":
    main()
