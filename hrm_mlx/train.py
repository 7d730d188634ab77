"""Training: the official HRM/TRM recipe in MLX, resumable and data-parallel.

Semantics (HRM pretrain.py, TRM alike): every optimizer step runs ONE ACT step of the whole batch on a persistent
carry; rows that halted take fresh examples (deep supervision: one loss and one update per segment). The loss
(LM + 0.5 Q-halt [+ 0.5 Q-continue]) is scaled by 1 / global_batch_size; AdamATan2 updates the weights, SignSGD
the puzzle-embedding rows of the batch; both follow the linear-warmup + cosine schedule; TRM recipes keep an EMA of
the weights, used for evaluation and the saved model. The whole step is one ``mx.compile``d function over the
model, optimizer and training state (mlx-lm's ``partial(mx.compile, inputs=state, outputs=state)`` pattern).

Data parallel (``mlx.launch -n N hrm-mlx train ...``): every rank draws the same global batch and keeps its slice;
gradients are summed over ranks (each rank's loss is already divided by the *global* batch size, so the sum is
the official gradient); the puzzle-embedding gradients are gathered and summed per id; rank 0 reports and saves.

A run directory holds ``config.json`` (the resolved config), ``metrics.jsonl``, ``checkpoints/step_N/``
(weights, optimizer, EMA, carry, data position and RNG state; written to a temporary folder and renamed, then
``checkpoints/latest`` is replaced atomically), the final model folder ``model/`` (``hrm_mlx.io`` format) and
``curves.png``. This module never prints: it reports events to a callback.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_map, tree_unflatten

from hrm_mlx import data as datasets
from hrm_mlx import optim
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import act

TRAIN_DEFAULTS = {
    "global_batch_size": 768,
    "epochs": 100000,
    "eval_interval": None,  # epochs between evaluations (official); also the loader's epochs per iteration
    "steps": None,  # total optimizer steps; None: int(epochs * groups * mean examples / global_batch_size)
    "lr": 1e-4,
    "lr_min_ratio": 1.0,
    "lr_warmup_steps": 2000,
    "beta1": 0.9,
    "beta2": 0.95,
    "weight_decay": 0.1,
    "puzzle_emb_lr": 1e-2,
    "puzzle_emb_weight_decay": 0.1,
    "seed": 0,
    "ema": False,
    "ema_rate": 0.999,
    "eval_every": None,  # steps; None: eval_interval in steps, else a tenth of the run
    "eval_examples": None,  # test examples per evaluation; None: the whole test split (official)
    "checkpoint_every": None,  # steps; None: eval_every
    "keep_checkpoints": 2,
    "log_every": 10,
    "compile": True,
    "init_from": None,  # a model folder or repo whose weights start the run (a curriculum stage); same shapes
    "data": {},
}
DEFAULT_RECIPES = {"sudoku": "sudoku-cpu", "maze": "maze-cpu", "arc": "arc-cpu"}
METRIC_KEYS = ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps", "lm_loss", "q_halt_loss",
               "q_continue_loss")


# ---------------------------------------------------------------------------------------------------------------
# Configuration


def load_recipe(name_or_path: str) -> dict:
    """A recipe by name (hrm_mlx/recipes) or a JSON file path."""
    from hrm_mlx import recipes

    path = Path(name_or_path).expanduser()
    if name_or_path.endswith(".json") or path.is_file():
        try:
            recipe = json.loads(path.read_text())
        except FileNotFoundError:
            raise HrmMlxError(f"recipe file {name_or_path!r} does not exist") from None
        except (OSError, json.JSONDecodeError) as error:
            raise HrmMlxError(f"cannot read recipe {name_or_path}: {error}") from None
        recipe.setdefault("recipe", path.stem)
    else:
        recipe = recipes.load(name_or_path)
        recipe["recipe"] = name_or_path
    if not isinstance(recipe, dict) or not isinstance(recipe.get("model"), dict) or "task" not in recipe:
        raise HrmMlxError(f"recipe {name_or_path!r} needs a task and a model section")
    return recipe


def parse_value(text: str):
    """A --set value: JSON when it parses (numbers, true/false/null, lists), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: Sequence[str]) -> list[tuple[list[str], object]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HrmMlxError(f"--set takes KEY=VALUE (e.g. train.lr=3e-4), got {item!r}")
        out.append((key.strip().split("."), parse_value(value.strip())))
    return out


def _model_fields(family: str) -> set[str]:
    from hrm_mlx.models import FAMILIES

    if family not in FAMILIES:
        raise HrmMlxError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    return {f.name for f in dataclasses.fields(FAMILIES[family].ModelArgs)} | {"family"}


def resolve_config(recipe: dict, overrides: Sequence[str] | Sequence[tuple] = ()) -> dict:
    """The full training config: defaults, the recipe, then ``overrides`` ("train.lr=3e-4" or parsed pairs).
    Every key must exist (model keys are the family's ModelArgs fields); returns a new dict."""
    config = {
        "recipe": recipe.get("recipe"),
        "description": recipe.get("description", ""),
        "task": recipe["task"],
        "model": copy.deepcopy(recipe["model"]),
        "train": {**copy.deepcopy(TRAIN_DEFAULTS), **copy.deepcopy(recipe.get("train", {}))},
    }
    pairs = parse_overrides(overrides) if overrides and isinstance(overrides[0], str) else list(overrides)
    for path, value in pairs:
        if path == ["task"]:
            config["task"] = value
            continue
        if path[0] not in ("model", "train") or len(path) < 2:
            raise HrmMlxError(f"unknown config key {'.'.join(path)!r} (keys start with model., train. or "
                              f"train.data.)")
        node = config
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    _validate(config)
    return config


def _validate(config: dict) -> None:
    task = config["task"]
    train = config["train"]
    unknown = sorted(set(train) - set(TRAIN_DEFAULTS))
    if unknown:
        raise HrmMlxError(f"unknown config key 'train.{unknown[0]}'; known: {', '.join(sorted(TRAIN_DEFAULTS))}")
    data = train.get("data")
    if not isinstance(data, dict):
        raise HrmMlxError("train.data must be an object of data settings")
    try:
        train["data"] = datasets.resolve(task, data)
    except HrmMlxError as error:
        raise HrmMlxError(str(error).replace("unknown data setting '", "unknown config key 'train.data.")) from None
    model = config["model"]
    fields = _model_fields(model.get("family", "hrm"))
    unknown = sorted(set(model) - fields)
    if unknown:
        raise HrmMlxError(f"unknown config key 'model.{unknown[0]}' for the {model.get('family', 'hrm')} family")
    for key in ("global_batch_size", "log_every", "keep_checkpoints", "lr_warmup_steps"):
        if not isinstance(train[key], int) or isinstance(train[key], bool) or train[key] < (0 if key ==
                                                                                             "lr_warmup_steps" else 1):
            raise HrmMlxError(f"train.{key} must be a positive integer, not {train[key]!r}")
    for key in ("steps", "eval_every", "checkpoint_every", "eval_examples", "eval_interval"):
        value = train[key]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise HrmMlxError(f"train.{key} must be a positive integer or null, not {value!r}")
    for key in ("lr", "lr_min_ratio", "beta1", "beta2", "weight_decay", "puzzle_emb_lr", "puzzle_emb_weight_decay",
                "ema_rate", "epochs"):
        if not isinstance(train[key], (int, float)) or isinstance(train[key], bool) or train[key] < 0:
            raise HrmMlxError(f"train.{key} must be a non-negative number, not {train[key]!r}")


def model_config(config: dict, meta: dict) -> dict:
    """The model's config.json fields: the recipe's, with the sizes the data decide (as the official
    pretrain takes them from dataset.json) and the task."""
    model = dict(config["model"])
    model.setdefault("family", "hrm")
    model.update(seq_len=int(meta["seq_len"]), vocab_size=int(meta["vocab_size"]),
                 num_puzzle_identifiers=int(meta["num_puzzle_identifiers"]))
    model["task"] = datasets.task_info(config["task"], config["train"]["data"])
    return model


def schedule(train: dict, meta: dict) -> dict:
    """Total steps, evaluation and checkpoint intervals (in optimizer steps)."""
    per_epoch = meta["total_groups"] * meta["mean_puzzle_examples"] / train["global_batch_size"]
    total = int(train["steps"]) if train["steps"] else int(train["epochs"] * per_epoch)
    if total < 1:
        raise HrmMlxError("the run has no steps: the data set is smaller than one batch; set train.steps")
    if train["eval_every"]:
        eval_every = int(train["eval_every"])
    elif train["eval_interval"]:
        eval_every = max(1, int(train["eval_interval"] * per_epoch))
    else:
        eval_every = max(1, total // 10)
    return {"total_steps": total, "eval_every": eval_every,
            "checkpoint_every": int(train["checkpoint_every"] or eval_every),
            "epochs_per_iter": int(train["eval_interval"] or 1)}


# ---------------------------------------------------------------------------------------------------------------
# Distributed helpers


def _all_sum_tree(tree, group):
    """Sum a tree of float arrays over the ranks with one all_sum of their concatenation."""
    flat = tree_flatten(tree)
    if not flat:
        return tree
    keys = [k for k, _ in flat]
    shapes = [v.shape for _, v in flat]
    dtypes = [v.dtype for _, v in flat]
    joined = mx.concatenate([v.astype(mx.float32).reshape(-1) for _, v in flat])
    summed = mx.distributed.all_sum(joined, group=group)
    out, offset = [], 0
    for key, shape, dtype in zip(keys, shapes, dtypes):
        size = math.prod(shape)
        out.append((key, summed[offset:offset + size].reshape(shape).astype(dtype)))
        offset += size
    return tree_unflatten(out)


def _gather(x: mx.array, group) -> mx.array:
    if group.size() == 1:
        return x
    dtype = x.dtype
    wide = mx.int32 if (dtype == mx.bool_ or mx.issubdtype(dtype, mx.integer)) else mx.float32
    return mx.distributed.all_gather(x.astype(wide), group=group).astype(dtype)


def _broadcast(x: mx.array, group) -> mx.array:
    """Rank 0's value of ``x`` on every rank (others pass arrays of the same shape)."""
    if group.size() == 1:
        return x
    dtype = x.dtype
    wide = mx.int32 if (dtype == mx.bool_ or mx.issubdtype(dtype, mx.integer)) else mx.float32
    mine = x.astype(wide) if group.rank() == 0 else mx.zeros(x.shape, wide)
    out = mx.distributed.all_sum(mine, group=group).astype(dtype)
    mx.eval(out)  # collectives outside a compiled graph run one at a time, in the same order on every rank
    return out


def _gather_now(x: mx.array, group) -> mx.array:
    out = _gather(x, group)
    mx.eval(out)
    return out


def _broadcast_json(obj, group):
    if group.size() == 1:
        return obj
    blob = json.dumps(obj).encode() if group.rank() == 0 else b""
    length = int(_broadcast(mx.array(len(blob), dtype=mx.int32), group).item())
    raw = np.frombuffer(blob, dtype=np.uint8) if group.rank() == 0 else np.zeros(length, np.uint8)
    out = np.array(_broadcast(mx.array(raw.astype(np.int32)), group)).astype(np.uint8)
    return json.loads(out.tobytes().decode())


# ---------------------------------------------------------------------------------------------------------------
# The step


class Trainer:
    """Model, optimizers, training state and the (compiled) step of one rank."""

    def __init__(self, model, train: dict, total_steps: int, group, compiled: bool = True):
        self.model = model
        self.train = train
        self.total_steps = total_steps
        self.group = group
        self.world, self.rank = group.size(), group.rank()
        self.global_batch = train["global_batch_size"]
        self.local_batch = self.global_batch // self.world
        self.optimizer = optim.AdamATan2(learning_rate=0.0, betas=(train["beta1"], train["beta2"]),
                                         weight_decay=train["weight_decay"])
        self.optimizer.init(model.trainable_parameters())
        self.tstate = {"key": mx.random.key(int(train["seed"]) + 1)}
        if train["ema"]:
            self.tstate["ema"] = tree_map(lambda p: mx.array(p), model.trainable_parameters())
        self.has_puzzle_emb = "puzzle_emb" in model
        self.state = [model.state, self.optimizer.state, self.tstate]
        self.compiled = compiled
        step = self._step
        self.step_fn = partial(mx.compile, inputs=self.state, outputs=self.state)(step) if compiled else step

    def _loss(self, params, rows, carry, min_halt_steps):
        self.model.update(params)
        loss, (new_carry, _outputs, metrics) = act.training_loss(self.model, carry, rows, min_halt_steps)
        return loss / self.global_batch, new_carry, metrics

    def _step(self, carry, batch, lr, emb_lr):
        model, train = self.model, self.train
        carry = act.reset_halted(model, carry, batch)
        ids = carry["puzzle_identifiers"]
        rows = model.puzzle_rows(ids)
        key, sub = mx.random.split(self.tstate["key"])
        self.tstate["key"] = key
        min_halt = act.exploration(self.global_batch, model.args.halt_exploration_prob, model.args.halt_max_steps,
                                   key=sub)
        if self.world > 1:  # every rank drew the global batch's numbers; keep this rank's rows
            min_halt = min_halt[self.rank * self.local_batch:(self.rank + 1) * self.local_batch]
        params = model.trainable_parameters()
        if rows is not None:
            (loss, carry, metrics), (grads, row_grads) = mx.value_and_grad(self._loss, argnums=(0, 1))(
                params, rows, carry, min_halt)
        else:
            (loss, carry, metrics), grads = mx.value_and_grad(self._loss)(params, rows, carry, min_halt)
        metrics = dict(metrics, loss=loss)
        if self.world > 1:
            grads = _all_sum_tree(grads, self.group)
            metrics = _all_sum_tree(metrics, self.group)
        self.optimizer.learning_rate = lr
        self.optimizer.update(model, grads)
        if rows is not None:
            all_ids, all_grads = _gather(ids, self.group), _gather(row_grads, self.group)
            model.puzzle_emb.weight = optim.sign_sgd_rows(model.puzzle_emb.weight, all_ids, all_grads, emb_lr,
                                                          train["puzzle_emb_weight_decay"])
        if "ema" in self.tstate:
            self.tstate["ema"] = optim.ema_update(self.tstate["ema"], model.trainable_parameters(),
                                                  train["ema_rate"])
        return carry, metrics

    def lrs(self, step: int) -> tuple[float, float]:
        t = self.train
        return (optim.lr_at(step, t["lr"], t["lr_warmup_steps"], self.total_steps, t["lr_min_ratio"]),
                optim.lr_at(step, t["puzzle_emb_lr"], t["lr_warmup_steps"], self.total_steps, t["lr_min_ratio"]))

    def step(self, step: int, carry: dict, batch: dict):
        """Optimizer step number ``step`` (from 1). Returns (carry, metrics) with metrics evaluated."""
        lr, emb_lr = self.lrs(step)
        carry, metrics = self.step_fn(carry, batch, mx.array(lr, dtype=mx.float32),
                                      mx.array(emb_lr, dtype=mx.float32))
        mx.eval(carry, metrics, self.state)
        return carry, metrics

    def ema_weights(self):
        return self.tstate.get("ema")


def initial_carry(model, local_batch: int, seq_len: int) -> dict:
    dummy = {"inputs": mx.zeros((local_batch, seq_len), dtype=mx.int32),
             "labels": mx.zeros((local_batch, seq_len), dtype=mx.int32),
             "puzzle_identifiers": mx.zeros((local_batch,), dtype=mx.int32)}
    return act.initial_carry(model, dummy)


def to_mx(batch: dict) -> dict:
    return {k: mx.array(v) for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------------------------
# Evaluation


def evaluate(model, split: datasets.Split, global_batch_size: int, *, limit: int | None = None, group=None,
             compiled: bool = True, halt_max_steps: int | None = None, on_batch: Callable | None = None,
             collect: bool = False):
    """The official evaluation: each test batch runs halt_max_steps ACT steps; the metrics of the final step are
    summed over batches (and ranks) and divided by the count. Adds ``act_steps``: the mean step at which the
    halting head would first stop (halt_max_steps when it never does). With ``collect``, also returns the
    predictions (tokens of the final step) and the inputs/labels of the real rows (rank-local)."""
    group = group or mx.distributed.init()
    steps = halt_max_steps or model.args.halt_max_steps
    eval_step = act.make_eval_step(model, halt_max_steps=steps, compiled=compiled)
    sums = {k: 0.0 for k in METRIC_KEYS}
    sums["act_steps"] = 0.0
    collected = []
    for batch_np, _n in datasets.test_batches(split, global_batch_size, group.rank(), group.size(), limit):
        batch = to_mx(batch_np)
        carry = act.initial_carry(model, batch)
        first_halt = mx.full((batch["inputs"].shape[0],), steps, dtype=mx.int32)
        for t in range(steps):
            carry, outputs, _loss, metrics = eval_step(carry, batch)
            first_halt = mx.where(act.halts(model, outputs) & (first_halt == steps), t + 1, first_halt)
        valid = (batch["labels"] != act.IGNORE_LABEL_ID).sum(-1) > 0
        metrics = dict(metrics, act_steps=mx.where(valid, first_halt, 0).sum().astype(mx.float32))
        metrics = {k: metrics[k].astype(mx.float32) for k in sums if k in metrics}
        if group.size() > 1:
            metrics = _all_sum_tree(metrics, group)
        mx.eval(metrics)
        for k, v in metrics.items():
            sums[k] += float(v.item())
        if collect:
            real = np.array(valid)
            collected.append((batch_np["inputs"][real], batch_np["labels"][real],
                              np.array(mx.argmax(outputs["logits"], axis=-1))[real]))
        if on_batch:
            on_batch(int(np.array(valid).sum()))
    count = max(sums.pop("count"), 1.0)
    result = {k: v / count for k, v in sums.items()}
    result["count"] = int(count)
    if collect:
        joined = [np.concatenate(parts) if parts else np.zeros((0, split.meta["seq_len"]), np.int32)
                  for parts in zip(*collected)] if collected else [np.zeros((0, split.meta["seq_len"]))] * 3
        return result, joined
    return result


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints


def _flat(tree) -> dict:
    return {k: v for k, v in tree_flatten(tree)}


def _carry_arrays(carry: dict) -> dict:
    out = {f"state.{i}": s for i, s in enumerate(carry["state"])}
    out.update({k: v for k, v in carry.items() if k != "state"})
    return out


def _carry_from(arrays: dict) -> dict:
    n = len([k for k in arrays if k.startswith("state.")])
    carry = {k: v for k, v in arrays.items() if not k.startswith("state.")}
    carry["state"] = tuple(arrays[f"state.{i}"] for i in range(n))
    return carry


def _write_json_atomic(path: Path, obj) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(obj, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_checkpoint(run_dir: Path, step: int, trainer: Trainer, carry: dict, loader_state: dict, extra: dict,
                    keep: int = 2) -> Path:
    """Write checkpoints/step_N atomically, then point checkpoints/latest at it and prune old ones."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        mx.save_safetensors(str(tmp / "model.safetensors"), _flat(trainer.model.parameters()))
        mx.save_safetensors(str(tmp / "optimizer.safetensors"), _flat(trainer.optimizer.state))
        mx.save_safetensors(str(tmp / "train_state.safetensors"), _flat(trainer.tstate))
        mx.save_safetensors(str(tmp / "carry.safetensors"), _carry_arrays(carry))
        (tmp / "state.json").write_text(json.dumps({"step": step, "loader": loader_state, **extra}, indent=2))
        for file in tmp.iterdir():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _write_json_atomic(root / "latest.json", {"step": step, "name": name})
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
    model_w = mx.load(str(folder / "model.safetensors")) if rank0 else _flat(trainer.model.parameters())
    opt_w = mx.load(str(folder / "optimizer.safetensors")) if rank0 else _flat(trainer.optimizer.state)
    ts_w = mx.load(str(folder / "train_state.safetensors")) if rank0 else _flat(trainer.tstate)
    global_carry = _carry_arrays(carry)
    if group.size() > 1:
        global_carry = {k: mx.concatenate([v] * group.size()) for k, v in global_carry.items()}
    carry_w = mx.load(str(folder / "carry.safetensors")) if rank0 else global_carry
    state = json.loads((folder / "state.json").read_text()) if rank0 else None
    if group.size() > 1:
        model_w = {k: _broadcast(v, group) for k, v in model_w.items()}
        opt_w = {k: _broadcast(v, group) for k, v in opt_w.items()}
        ts_w = {k: _broadcast(v, group) for k, v in ts_w.items()}
        carry_w = {k: _broadcast(v, group) for k, v in carry_w.items()}
        state = _broadcast_json(state, group)
    expected = set(_flat(trainer.model.parameters()))
    if set(model_w) != expected:
        raise HrmMlxError(f"the checkpoint {folder} does not match the model of this config")
    trainer.model.load_weights(list(model_w.items()))
    # In place, so that the compiled step's captured state trees stay the same objects.
    _assign(trainer.optimizer.state, opt_w, f"the optimizer state of {folder}")
    _assign(trainer.tstate, ts_w, f"the training state of {folder}")
    return int(state["step"]), carry_w, state["loader"], state


# ---------------------------------------------------------------------------------------------------------------
# The run


def init_weights_from(model, source: str) -> None:
    """Start ``model`` from the weights of the model at ``source`` (folder, checkpoint or repo id; see io.load).
    Every parameter must exist there with the same shape: a model trained on small grids can go on to larger
    ones when no parameter depends on the sequence length (e.g. the conv mixer with rope or no positions)."""
    from hrm_mlx import io

    donor, _ = io.load(source)
    ours, theirs = _flat(model.parameters()), _flat(donor.parameters())
    for key, value in ours.items():
        if key not in theirs:
            raise HrmMlxError(f"--init-from {source}: that model has no parameter {key}")
        if theirs[key].shape != value.shape:
            raise HrmMlxError(f"--init-from {source}: parameter {key} has shape {tuple(theirs[key].shape)} there "
                              f"but {tuple(value.shape)} here")
    extra = sorted(set(theirs) - set(ours))
    if extra:
        raise HrmMlxError(f"--init-from {source}: that model has parameters this one lacks ({extra[0]}, ...)")
    model.load_weights([(key, theirs[key].astype(value.dtype)) for key, value in ours.items()])


def _config_difference(a, b, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            diff = _config_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if diff:
                return diff
        return None
    return None if a == b else f"{prefix[:-1]} ({a!r} here, {b!r} in the run)"


def prepare_run_dir(run_dir: Path, config: dict | None, resume: bool) -> dict:
    """Check the run directory and return the config to use. New run: ``run_dir`` must not hold a run.
    Resume: the directory must hold a run; a given config must equal the saved one."""
    saved_path = run_dir / "config.json"
    if resume:
        if not saved_path.is_file():
            raise HrmMlxError(f"{run_dir} is not a training run (no config.json)")
        try:
            saved = json.loads(saved_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise HrmMlxError(f"cannot read {saved_path}: {error}") from None
        if isinstance(saved.get("train"), dict):  # a run saved before a setting existed has its default
            saved["train"] = {**copy.deepcopy(TRAIN_DEFAULTS), **saved["train"]}
        if config is not None:
            diff = _config_difference(config, saved)
            if diff:
                raise HrmMlxError(f"{run_dir} was trained with another config: {diff}")
        try:
            _validate(saved)
        except HrmMlxError as error:
            raise HrmMlxError(f"{saved_path}: {error}") from None
        return saved
    if config is None:
        raise HrmMlxError("no config to train")
    if run_dir.exists() and (saved_path.exists() or (run_dir / "checkpoints").exists()):
        raise HrmMlxError(f"{run_dir} already holds a training run; continue it with --resume {run_dir} or choose "
                          f"another --out")
    if run_dir.exists() and not run_dir.is_dir():
        raise HrmMlxError(f"{run_dir} is a file, not a directory")
    return config


class _Interrupt:
    """SIGINT sets a flag: the loop finishes its step, saves a checkpoint and returns."""

    def __init__(self):
        self.flag = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.flag:  # second Ctrl-C: give up at once
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def train(config: dict | None, run_dir: str | Path, *, resume: bool = False, callback: Callable | None = None,
          cache_dir: str | Path | None = None, group=None, time_limit: float | None = None) -> dict:
    """Train (or continue) a run. ``config`` is resolve_config()'s result (None to resume with the saved one).
    ``time_limit`` (seconds of this invocation) ends the run early like its last step: evaluation, checkpoint and
    model folder (continue it with ``resume``). Reports events to ``callback(event: dict)`` on rank 0. Returns a
    summary dict."""
    wall_start = time.perf_counter()
    run_dir = Path(run_dir).expanduser()
    group = group or mx.distributed.init()
    rank0 = group.rank() == 0
    report = (callback or (lambda event: None)) if rank0 else (lambda event: None)
    if group.size() == 1:
        config = prepare_run_dir(run_dir, config, resume)
    else:  # rank 0 owns the run directory; the others learn its verdict (and, on resume, the config)
        outcome = None
        if rank0:
            try:
                outcome = {"config": prepare_run_dir(run_dir, config, resume)}
            except HrmMlxError as error:
                outcome = {"error": str(error)}
        outcome = _broadcast_json(outcome, group)
        if "error" in outcome:
            raise HrmMlxError(outcome["error"])
        config = outcome["config"]
    train_cfg = config["train"]
    if train_cfg["global_batch_size"] % group.size():
        raise HrmMlxError(f"global batch size {train_cfg['global_batch_size']} is not a multiple of the "
                          f"{group.size()} ranks")

    folder = datasets.build(config["task"], train_cfg["data"], cache_dir,
                            progress=lambda done, total, what: report(
                                {"event": "data", "done": done, "total": total, "what": what}))
    train_split, test_split = datasets.Split(folder, "train"), datasets.Split(folder, "test")
    meta = train_split.meta
    plan = schedule(train_cfg, meta)
    mconfig = model_config(config, meta)

    from hrm_mlx.models import build

    mx.random.seed(int(train_cfg["seed"]))
    model = build(mconfig)
    checkpoint = latest_checkpoint(run_dir) if resume and rank0 else None
    has_checkpoint = _broadcast_json(checkpoint is not None, group) if group.size() > 1 else checkpoint is not None
    if train_cfg["init_from"] and not has_checkpoint:
        init_weights_from(model, train_cfg["init_from"])
    trainer = Trainer(model, train_cfg, plan["total_steps"], group, compiled=bool(train_cfg["compile"]))
    if rank0:  # only now that data and model are known to be good
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            _write_json_atomic(run_dir / "config.json", config)
    loader = datasets.TrainLoader(train_split, train_cfg["global_batch_size"], int(train_cfg["seed"]),
                                  plan["epochs_per_iter"], group.rank(), group.size())
    carry = initial_carry(model, trainer.local_batch, meta["seq_len"])
    step, elapsed = 0, 0.0
    if has_checkpoint:
        step, global_carry, loader_state, extra = load_checkpoint(checkpoint, trainer, carry, group)
        lo, hi = group.rank() * trainer.local_batch, (group.rank() + 1) * trainer.local_batch
        carry = _carry_from({k: v[lo:hi] for k, v in global_carry.items()})
        loader.load_state(loader_state)
        elapsed = float(extra.get("elapsed", 0.0))
    metrics_path = run_dir / "metrics.jsonl"
    if rank0:
        _truncate_metrics(metrics_path, step)

    n_params = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    report({"event": "start", "run_dir": str(run_dir), "step": step, "total_steps": plan["total_steps"],
            "params": int(n_params), "train_examples": train_split.num_examples,
            "test_examples": test_split.num_examples, "data": str(folder), "world_size": group.size(),
            "resumed": bool(has_checkpoint), "compiled": trainer.compiled, **plan})

    def log(record: dict) -> None:
        if rank0:
            with open(metrics_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def run_eval() -> dict:
        ema = trainer.ema_weights()
        saved = model.trainable_parameters() if ema is not None else None
        if ema is not None:
            model.update(ema)
        result = evaluate(model, test_split, train_cfg["global_batch_size"], limit=train_cfg["eval_examples"],
                          group=group, compiled=trainer.compiled)
        if saved is not None:
            model.update(saved)
        return result

    def checkpoint_now() -> Path | None:
        gathered = {k: _gather_now(v, group) for k, v in _carry_arrays(carry).items()}
        if not rank0:
            return None
        path = save_checkpoint(run_dir, step, trainer, _carry_from(gathered), loader.state(),
                               {"elapsed": elapsed, "world_size": group.size()},
                               keep=int(train_cfg["keep_checkpoints"]))
        report({"event": "checkpoint", "step": step, "path": str(path)})
        return path

    window = _Window()
    delay = float(os.environ.get("HRM_MLX_STEP_DELAY", "0") or 0)  # testing knob: slow the loop down
    interrupted = timed_out = False
    last_eval = None
    with _Interrupt() as interrupt:
        while step < plan["total_steps"]:
            started = time.perf_counter()
            batch = to_mx(loader.next())
            carry, metrics = trainer.step(step + 1, carry, batch)
            step += 1
            seconds = time.perf_counter() - started
            elapsed += seconds
            window.add(metrics, seconds, trainer.global_batch)
            if delay:
                time.sleep(delay)
            out_of_time = bool(time_limit) and time.perf_counter() - wall_start > time_limit
            if group.size() > 1:
                out_of_time = _broadcast_json(out_of_time, group)
            last = step == plan["total_steps"] or out_of_time
            if step % train_cfg["log_every"] == 0 or last:
                record = window.flush(step, trainer.lrs(step)[0], trainer.global_batch)
                remaining = plan["total_steps"] - step
                record["eta_s"] = remaining / record["steps_per_s"] if record["steps_per_s"] else None
                log({"split": "train", **record})
                report({"event": "train", "total_steps": plan["total_steps"], **record})
            if step % plan["eval_every"] == 0 or last:
                last_eval = run_eval()
                log({"split": "eval", "step": step, **last_eval})
                report({"event": "eval", "step": step, **last_eval})
            stop = _broadcast_json(interrupt.flag, group) if group.size() > 1 else interrupt.flag
            if step % plan["checkpoint_every"] == 0 or last or stop:
                checkpoint_now()
            if stop:
                interrupted = True
                break
            if out_of_time:
                timed_out = True
                break

    summary = {"run_dir": str(run_dir), "step": step, "total_steps": plan["total_steps"],
               "interrupted": interrupted, "time_limited": timed_out, "eval": last_eval, "elapsed_s": elapsed}
    if not interrupted and rank0:
        summary["model_dir"] = str(save_model(run_dir / "model", trainer, mconfig, config, folder))
        summary["plot"] = str(plot_metrics(metrics_path, run_dir / "curves.png") or "")
    report({"event": "done", **summary})
    return summary


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop the metric lines written after the checkpoint (they will be written again)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in keep))


class _Window:
    """Training metrics summed over the steps since the last log line."""

    def __init__(self):
        self.sums, self.steps, self.seconds = {}, 0, 0.0

    def add(self, metrics: dict, seconds: float, batch: int) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.item())
        self.steps += 1
        self.seconds += seconds

    def flush(self, step: int, lr: float, batch: int) -> dict:
        s, n = self.sums, max(self.steps, 1)
        count = max(s.get("count", 0.0), 1.0)
        record = {
            "step": step,
            "loss": s.get("loss", 0.0) / n,
            "lm_loss": s.get("lm_loss", 0.0) / (n * batch),
            "q_halt_loss": s.get("q_halt_loss", 0.0) / (n * batch),
            "accuracy": s.get("accuracy", 0.0) / count,
            "exact_accuracy": s.get("exact_accuracy", 0.0) / count,
            "q_halt_accuracy": s.get("q_halt_accuracy", 0.0) / count,
            "steps": s.get("steps", 0.0) / count,
            "halted": int(s.get("count", 0.0)),
            "lr": lr,
            "steps_per_s": self.steps / self.seconds if self.seconds else 0.0,
            "examples_per_s": self.steps * batch / self.seconds if self.seconds else 0.0,
        }
        if "q_continue_loss" in s:
            record["q_continue_loss"] = s["q_continue_loss"] / (n * batch)
        self.sums, self.steps, self.seconds = {}, 0, 0.0
        return record


def save_model(folder: Path, trainer: Trainer, mconfig: dict, config: dict, data_folder: Path) -> Path:
    """The final model folder (hrm_mlx.io format), with the EMA weights when the recipe keeps an EMA. Its
    config.json also records the data settings, so ``hrm-mlx eval`` finds the same held-out split."""
    from hrm_mlx import io

    model = trainer.model
    ema = trainer.ema_weights()
    saved = model.trainable_parameters() if ema is not None else None
    if ema is not None:
        model.update(ema)
    identifiers = None
    ids_file = Path(data_folder) / "identifiers.json"
    if config["task"] == "arc" and ids_file.is_file():
        identifiers = json.loads(ids_file.read_text())
    extra = {"data": config["train"]["data"], "recipe": config.get("recipe")}
    try:
        return io.save(model, {**mconfig, **extra}, folder, identifiers=identifiers)
    finally:
        if saved is not None:
            model.update(saved)


def plot_metrics(metrics_path: Path, out: Path) -> Path | None:
    """A PNG of the loss and accuracy curves (train and eval); None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    train = [r for r in records if r.get("split") == "train"]
    evals = [r for r in records if r.get("split") == "eval"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        steps = [r["step"] for r in train]
        ax_loss.plot(steps, [r["loss"] for r in train], label="train loss (total / batch)")
        ax_loss.plot(steps, [r["lm_loss"] for r in train], label="train LM loss", alpha=0.7)
        ax_acc.plot(steps, [r["accuracy"] for r in train], label="train token accuracy", alpha=0.7)
        ax_acc.plot(steps, [r["exact_accuracy"] for r in train], label="train exact accuracy")
    if evals:
        steps = [r["step"] for r in evals]
        ax_acc.plot(steps, [r["accuracy"] for r in evals], "o-", label="eval token accuracy")
        ax_acc.plot(steps, [r["exact_accuracy"] for r in evals], "s-", label="eval exact accuracy")
    ax_loss.set_xlabel("step")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ax_acc.set_xlabel("step")
    ax_acc.set_ylim(0, 1)
    ax_acc.legend()
    fig.suptitle(f"training curves: {metrics_path.parent.name}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Evaluating a saved model


def evaluate_model(model_path: str, task: str | None = None, settings: dict | None = None, *, n: int | None = None,
                   batch_size: int = 256, max_steps: int | None = None, cache_dir=None, callback=None) -> dict:
    """Exact accuracy of a model folder (or anything io.load takes) on a test set: the held-out split of the
    data the model was trained on when its config records it, else the official test set (``source`` "hub")
    or generated puzzles (``settings`` override data settings). ``n`` limits the test puzzles (a generated
    set has that many). Also checks each answer with the task's checker (``solved``)."""
    from hrm_mlx import io

    report = callback or (lambda event: None)
    model, config = io.load(model_path)
    model_task = (config.get("task") or {}).get("name")
    task = task or model_task
    if task is None:
        raise HrmMlxError("the model's config.json does not say its task; pass --task")
    if model_task is not None and task != model_task:
        raise HrmMlxError(f"the model solves {model_task}, not {task}")
    own = bool(config.get("data")) and task == model_task
    base = dict(config["data"]) if own else {}
    if not own:
        base = {"source": "hub"} if task in ("sudoku", "maze") else {}
        if task == "maze":
            base["canvas"] = int((config.get("task") or {}).get("canvas", 30))
        base["supervise"] = (config.get("task") or {}).get("supervise", "all")
    base.update(settings or {})
    if n is not None:
        base["test_subsample"] = n
        fresh = not own or bool(settings)  # not the model's own held-out split: a new generated set of n
        if task != "arc" and base.get("source", "generate") == "generate" and fresh:
            base.update(n_test=n, n_train=1)
    resolved = datasets.resolve(task, base)
    folder = datasets.build(task, resolved, cache_dir, progress=lambda d, t, w: report(
        {"event": "data", "done": d, "total": t, "what": w}))
    split = datasets.Split(folder, "test")
    if split.meta["seq_len"] != model.args.seq_len or split.meta["vocab_size"] != model.args.vocab_size:
        raise HrmMlxError(f"the test data ({split.meta['seq_len']} tokens, vocabulary {split.meta['vocab_size']}) "
                          f"do not fit the model ({model.args.seq_len}, {model.args.vocab_size})")
    total = split.num_examples if resolved["test_subsample"] is None else min(split.num_examples,
                                                                              resolved["test_subsample"])
    report({"event": "eval_start", "total": total, "data": str(folder)})
    result, (inputs, labels, predictions) = evaluate(
        model, split, batch_size, limit=total, compiled=True, halt_max_steps=max_steps, collect=True,
        on_batch=lambda n: report({"event": "eval_batch", "n": n}))
    result["solved"] = _checked_fraction(task, resolved, inputs, predictions)
    result.update(task=task, data=str(folder), examples=int(len(inputs)))
    return result


def _checked_fraction(task: str, settings: dict, inputs: np.ndarray, predictions: np.ndarray) -> float | None:
    """Fraction of answers the task's checker accepts (given cells copied from the input first when the
    model was supervised on free cells only). None for tasks without a checker here."""
    if task not in ("sudoku", "maze") or not len(inputs):
        return None
    from hrm_mlx.tasks import maze, sudoku

    if settings.get("supervise") == "free":
        predictions = np.where(datasets.free_cells(task, inputs), predictions, inputs)
    solved = 0
    for x, y in zip(inputs, predictions):
        if task == "sudoku":
            puzzle = sudoku.SudokuPuzzle(sudoku.decode(x))
            ok, _ = sudoku.check(puzzle, sudoku.decode(y))
        else:
            grid = maze.decode(x)
            ok, _ = maze.check(maze.Maze(grid), maze.decode(y, maze.Maze(grid)))
        solved += bool(ok)
    return solved / len(inputs)
