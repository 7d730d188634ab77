"""Evaluation: the official test-split metrics during training, and a saved model's accuracy (``hrm-mlx eval``)."""

from __future__ import annotations

from typing import Callable

import mlx.core as mx
import numpy as np

from hrm_mlx import data as datasets
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import act
from hrm_mlx.train.distributed import all_sum_tree
from hrm_mlx.train.trainer import to_mx

METRIC_KEYS = ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps", "lm_loss", "q_halt_loss",
               "q_continue_loss")


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
    count = max(sums.pop("count"), 1.0)
    result = {k: v / count for k, v in sums.items()}
    result["count"] = int(count)
    if collect:
        joined = [np.concatenate(parts) if parts else np.zeros((0, split.meta["seq_len"]), np.int32)
                  for parts in zip(*collected)] if collected else [np.zeros((0, split.meta["seq_len"]))] * 3
        return result, joined
    return result


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
