"""Checkpoints of a run: weights, optimizer, training state, carry, data position and RNG, written atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

from hrm_mlx import atomic
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.train.distributed import broadcast, broadcast_json
from hrm_mlx.train.trainer import Trainer


def flat_tree(tree) -> dict:
    return {k: v for k, v in tree_flatten(tree)}


def carry_arrays(carry: dict) -> dict:
    out = {f"state.{i}": s for i, s in enumerate(carry["state"])}
    out.update({k: v for k, v in carry.items() if k != "state"})
    return out


def carry_from(arrays: dict) -> dict:
    n = len([k for k in arrays if k.startswith("state.")])
    carry = {k: v for k, v in arrays.items() if not k.startswith("state.")}
    carry["state"] = tuple(arrays[f"state.{i}"] for i in range(n))
    return carry


def save_checkpoint(run_dir: Path, step: int, trainer: Trainer, carry: dict, loader_state: dict, extra: dict,
                    keep: int = 2) -> Path:
    """Write checkpoints/step_N atomically, then point checkpoints/latest at it and prune old ones."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    final = root / name
    with atomic.folder(final) as tmp:
        mx.save_safetensors(str(tmp / "model.safetensors"), flat_tree(trainer.model.parameters()))
        mx.save_safetensors(str(tmp / "optimizer.safetensors"), flat_tree(trainer.optimizer.state))
        mx.save_safetensors(str(tmp / "train_state.safetensors"), flat_tree(trainer.tstate))
        mx.save_safetensors(str(tmp / "carry.safetensors"), carry_arrays(carry))
        (tmp / "state.json").write_text(json.dumps({"step": step, "loader": loader_state, **extra}, indent=2))
    atomic.write_json(root / "latest.json", {"step": step, "name": name})
    kept = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_"))
    for old in kept[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / "checkpoints" / "latest.json"
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text())["name"]
    except (OSError, json.JSONDecodeError, KeyError):
        raise HrmMlxError(f"{pointer} is damaged") from None
    folder = run_dir / "checkpoints" / name
    if not (folder / "state.json").is_file():
        raise HrmMlxError(f"{folder} is missing or incomplete")
    return folder


def _assign(tree, flat: dict, what: str) -> None:
    """Set the leaves of ``tree`` (nested dicts/lists) from ``flat`` ({"a.0.b": array}); the keys must match."""
    expected = {k for k, _ in tree_flatten(tree)}
    if set(flat) != expected:
        raise HrmMlxError(f"{what} does not match this config")
    for key, value in flat.items():
        node, parts = tree, key.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(parts[-1])] = value
        else:
            node[parts[-1]] = value


def load_checkpoint(folder: Path | None, trainer: Trainer, carry: dict, group) -> tuple[int, dict, dict, dict]:
    """Restore the trainer from ``folder`` (read on rank 0, broadcast to the others). Returns
    (step, global carry arrays, loader state, extra state)."""
    rank0 = group.rank() == 0
    model_w = mx.load(str(folder / "model.safetensors")) if rank0 else flat_tree(trainer.model.parameters())
    opt_w = mx.load(str(folder / "optimizer.safetensors")) if rank0 else flat_tree(trainer.optimizer.state)
    ts_w = mx.load(str(folder / "train_state.safetensors")) if rank0 else flat_tree(trainer.tstate)
    global_carry = carry_arrays(carry)
    if group.size() > 1:
        global_carry = {k: mx.concatenate([v] * group.size()) for k, v in global_carry.items()}
    carry_w = mx.load(str(folder / "carry.safetensors")) if rank0 else global_carry
    state = json.loads((folder / "state.json").read_text()) if rank0 else None
    if group.size() > 1:
        model_w = {k: broadcast(v, group) for k, v in model_w.items()}
        opt_w = {k: broadcast(v, group) for k, v in opt_w.items()}
        ts_w = {k: broadcast(v, group) for k, v in ts_w.items()}
        carry_w = {k: broadcast(v, group) for k, v in carry_w.items()}
        state = broadcast_json(state, group)
    expected = set(flat_tree(trainer.model.parameters()))
    if set(model_w) != expected:
        raise HrmMlxError(f"the checkpoint {folder} does not match the model of this config")
    trainer.model.load_weights(list(model_w.items()))
    # In place, so that the compiled step's captured state trees stay the same objects.
    _assign(trainer.optimizer.state, opt_w, f"the optimizer state of {folder}")
    _assign(trainer.tstate, ts_w, f"the training state of {folder}")
    return int(state["step"]), carry_w, state["loader"], state
