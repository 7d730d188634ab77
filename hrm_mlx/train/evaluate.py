"""Evaluation: the official test-split metrics during training, and a saved model's accuracy (``hrm-mlx eval``)."""

from __future__ import annotations

import time
from typing import Callable

import mlx.core as mx
import numpy as np

from hrm_mlx import data as datasets
from hrm_mlx import tasks
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import act
from hrm_mlx.tasks.base import DataConfig, Task
from hrm_mlx.train.callbacks import EvalCallback
from hrm_mlx.train.distributed import all_sum_tree, broadcast_json
from hrm_mlx.train.trainer import to_mx

METRIC_KEYS = ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps", "lm_loss", "q_halt_loss",
               "q_continue_loss")


def evaluate(model, split: datasets.Split, global_batch_size: int, *, limit: int | None = None, group=None,
             compiled: bool = True, halt_max_steps: int | None = None, on_batch: Callable | None = None,
             collect: bool = False, deadline: float | None = None):
    """The official evaluation: each test batch runs halt_max_steps ACT steps; the metrics of the final step are
    summed over batches (and ranks) and divided by the count. Adds ``act_steps``: the mean step at which the
    halting head would first stop (halt_max_steps when it never does). With ``collect``, also returns the
    predictions (tokens of the final step) and the inputs/labels of the real rows (rank-local). At the
    ``deadline`` (time.perf_counter()) it stops after the batch running then (``count`` says how many it took)."""
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
            metrics = all_sum_tree(metrics, group)
        mx.eval(metrics)
        for k, v in metrics.items():
            sums[k] += float(v.item())
        if collect:
            real = np.array(valid)
            collected.append((batch_np["inputs"][real], batch_np["labels"][real],
                              np.array(mx.argmax(outputs["logits"], axis=-1))[real]))
        if on_batch:
            on_batch(int(np.array(valid).sum()))
        if deadline is not None:
            late = time.perf_counter() >= deadline
            if broadcast_json(late, group) if group.size() > 1 else late:
                break
    count = max(sums.pop("count"), 1.0)
    result = {k: v / count for k, v in sums.items()}
    result["count"] = int(count)
    if collect:
        joined = [np.concatenate(parts) if parts else np.zeros((0, split.meta["seq_len"]), np.int32)
                  for parts in zip(*collected)] if collected else [np.zeros((0, split.meta["seq_len"]))] * 3
        return result, joined
    return result


def evaluate_model(model_path: str, task: str | None = None, settings: dict | None = None, *, n: int | None = None,
                   batch_size: int = 256, max_steps: int | None = None, cache_dir=None,
                   callback: EvalCallback | None = None) -> dict:
    """Exact accuracy of a model folder (or anything io.load takes) on a test set: the held-out split of the
    data the model was trained on when its config records it, else the task's official test set or generated
    puzzles (``settings`` override data settings). ``n`` evaluates n test puzzles, building the test split alone
    (generated: the first n of its stream; official: a seeded subsample). Also checks each answer with the task's
    checker (``solved``)."""
    from hrm_mlx import io

    report = callback or EvalCallback()
    model, config = io.load(model_path)
    info = config.get("task") or {}
    model_task = info.get("name")
    name = task or model_task
    if name is None:
        raise HrmMlxError("the model's config.json does not say its task; name the task")
    if model_task is not None and name != model_task:
        raise HrmMlxError(f"the model solves {model_task}, not {name}")
    task = tasks.get(name)
    own = bool(config.get("data")) and name == model_task
    base = dict(config["data"]) if own else task.data_for_model(info)
    base.update(settings or {})
    if n is not None:  # the test split alone: n generated test puzzles, or n of the official test set
        if "generate" in task.sources and base.get("source", "generate") == "generate":
            base.update(n_test=n, test_subsample=None)
        else:
            base["test_subsample"] = n
    data = datasets.resolve(task, base)
    folder = datasets.build(task, data, cache_dir, progress=report.on_data, test_only=n is not None)
    split = datasets.Split(folder, "test")
    if split.meta["seq_len"] != model.args.seq_len or split.meta["vocab_size"] != model.args.vocab_size:
        raise HrmMlxError(f"the test data ({split.meta['seq_len']} tokens, vocabulary {split.meta['vocab_size']}) "
                          f"do not fit the model ({model.args.seq_len}, {model.args.vocab_size})")
    total = split.num_examples if data.test_subsample is None else min(split.num_examples, data.test_subsample)
    report.on_start(total, folder)
    result, (inputs, labels, predictions) = evaluate(
        model, split, batch_size, limit=total, compiled=True, halt_max_steps=max_steps, collect=True,
        on_batch=report.on_batch)
    result["solved"] = _checked_fraction(task, data, inputs, predictions)
    result.update(task=task.name, data=str(folder), examples=int(len(inputs)))
    return result


def _checked_fraction(task: Task, data: DataConfig, inputs: np.ndarray, predictions: np.ndarray) -> float | None:
    """Fraction of answers the task's checker accepts (given cells copied from the input first when the
    model was supervised on free cells only). None for a task whose inputs alone are no checkable puzzle."""
    if not len(inputs) or task.puzzle_from_tokens(inputs[0]) is None:
        return None
    if data.supervise == "free":
        predictions = np.where(task.free_cells(inputs), predictions, inputs)
    solved = 0
    for x, y in zip(inputs, predictions):
        puzzle = task.puzzle_from_tokens(x)
        solved += bool(task.check(puzzle, task.decode(y, puzzle))[0])
    return solved / len(inputs)
