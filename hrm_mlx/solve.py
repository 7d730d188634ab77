"""From puzzles to checked answers: encode with the task module, run the ACT loop, decode, check.

Puzzles of one task are solved in batches. By default every puzzle runs the model's ``halt_max_steps`` ACT steps,
as the official evaluation does; ``max_steps`` changes that number (inference-time scaling), and ``adaptive``
stops each puzzle at the first step where its halt head prefers halting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

import mlx.core as mx
import numpy as np

from hrm_mlx import tasks
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import act


@dataclass
class Solution:
    puzzle: object
    answer: np.ndarray
    solved: bool
    reason: str
    steps: int
    halt_confidence: list[float] = field(default_factory=list)  # sigmoid(q_halt) after each ACT step
    attempts: list | None = None  # ARC: the ranked attempts (top 2 grids) for each test input


def shipped_model(task: str) -> Path:
    """The model folder shipped for ``task`` inside the package (weights/<task>/)."""
    folder = Path(str(resources.files("hrm_mlx.weights") / task))
    if not (folder / "config.json").is_file():
        raise HrmMlxError(f"no shipped model for task {task!r}; pass --model PATH_OR_REPO")
    return folder


def task_of(config: dict) -> tuple[object, dict]:
    """The task module a model was trained for, and the encoding options its config records."""
    task_config = dict(config.get("task") or {})
    name = task_config.pop("name", None)
    task_config.pop("supervise", None)  # a training setting, not an encoding option (see solve)
    if name is None:
        raise HrmMlxError("the model's config.json does not say which task it solves (no task.name)")
    return tasks.get(name), task_config


def _halting(outputs: dict, model) -> mx.array:
    if getattr(model.args, "no_ACT_continue", False):
        return outputs["q_halt_logits"] > 0
    return outputs["q_halt_logits"] > outputs["q_continue_logits"]


def run_act(model, inputs: np.ndarray, puzzle_identifiers: np.ndarray, *, max_steps: int | None = None,
            adaptive: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the ACT loop on one batch. Returns (predicted tokens [B, seq], steps used [B], sigmoid(q_halt) per
    step [B, T]); with ``adaptive`` each row's prediction is the one at the step where it first chose to halt."""
    steps_total = max_steps or model.args.halt_max_steps
    batch = {"inputs": mx.array(inputs, dtype=mx.int32), "labels": mx.zeros(inputs.shape, dtype=mx.int32),
             "puzzle_identifiers": mx.array(puzzle_identifiers, dtype=mx.int32)}
    step = _eval_step(model, steps_total)
    carry = act.initial_carry(model, batch)
    predictions = np.zeros(inputs.shape, dtype=np.int32)
    stopped = np.zeros(len(inputs), dtype=bool)
    steps_used = np.full(len(inputs), steps_total, dtype=np.int32)
    confidence = []
    for t in range(steps_total):
        carry, outputs, _, _ = step(carry, batch)
        tokens = np.array(mx.argmax(outputs["logits"], axis=-1))
        confidence.append(np.array(mx.sigmoid(outputs["q_halt_logits"])))
        halting = np.array(_halting(outputs, model)) if adaptive else np.zeros(len(inputs), dtype=bool)
        stop_now = ~stopped & (halting | (t == steps_total - 1))
        predictions[stop_now] = tokens[stop_now]
        steps_used[stop_now] = t + 1
        stopped |= stop_now
        if stopped.all():
            break
    return predictions, steps_used, np.stack(confidence, axis=1)


_compiled_steps: dict = {}


def _eval_step(model, halt_max_steps: int):
    key = (id(model), halt_max_steps)
    if key not in _compiled_steps:
        _compiled_steps[key] = act.make_eval_step(model, halt_max_steps=halt_max_steps)
    return _compiled_steps[key]


def solve(model, config: dict, puzzles: list, *, max_steps: int | None = None, adaptive: bool = False,
          batch_size: int = 64, on_batch: Callable[[int], None] | None = None) -> list[Solution]:
    """Solve puzzles of the model's task (validated beforehand). ``on_batch(n)`` reports progress."""
    task, encoding = task_of(config)
    solutions = []
    for start in range(0, len(puzzles), batch_size):
        chunk = puzzles[start:start + batch_size]
        inputs = np.stack([task.encode(p, **encoding) for p in chunk])
        tokens, steps, confidence = run_act(model, inputs, np.zeros(len(chunk), dtype=np.int32),
                                            max_steps=max_steps, adaptive=adaptive)
        if (config.get("task") or {}).get("supervise") == "free":
            # Trained with no loss on the cells copied from the input (hrm_mlx.data): copy them.
            from hrm_mlx.data import free_cells

            tokens = np.where(free_cells(task.NAME, inputs), tokens, inputs)
        for i, puzzle in enumerate(chunk):
            answer = task.decode(tokens[i], puzzle)
            solved, reason = task.check(puzzle, answer)
            solutions.append(Solution(puzzle, answer, solved, reason, int(steps[i]),
                                      [float(c) for c in confidence[i, :steps[i]]]))
        if on_batch:
            on_batch(len(chunk))
    return solutions


# -- ARC: augmentation voting ------------------------------------------------------------------------------------

def arc_versions(identifiers: list[str] | None) -> dict[str, list[tuple[int, str]]]:
    """Task id -> [(puzzle identifier, task name)] of the versions (original and augmented) the model was trained
    on, original first. An ARC model knows a task only through these learned puzzle embeddings."""
    from hrm_mlx.tasks import arc

    versions: dict[str, list[tuple[int, str]]] = {}
    for index, name in enumerate(identifiers or []):
        if name == arc.BLANK_IDENTIFIER:
            continue
        task_id = arc.split_name(name)[0]
        versions.setdefault(task_id, []).append((index, name))
    for entries in versions.values():
        entries.sort(key=lambda entry: not arc.split_name(entry[1])[1].is_identity)
    return versions


def solve_arc(model, versions: dict, puzzles: list, *, num_aug: int = 8, max_steps: int | None = None,
              batch_size: int = 64, on_batch: Callable[[int], None] | None = None) -> list[Solution]:
    """The official ARC evaluation for each test input: run the model on up to ``num_aug`` versions of the task
    (each with its own puzzle embedding), undo each augmentation, vote, and rank by (votes, mean halting
    confidence). Puzzles must be in ``versions``; the answer holds the top attempt per test input."""
    from hrm_mlx.tasks import arc

    rows = []  # (puzzle index, test index, identifier, name, encoded augmented test input)
    for p, puzzle in enumerate(puzzles):
        for t, (test_input, _) in enumerate(puzzle.test):
            for identifier, name in versions[puzzle.id][:num_aug]:
                augmented = arc.split_name(name)[1].apply(test_input)
                rows.append((p, t, identifier, name, arc.encode_grid(augmented)))
    tokens, halt = [], []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        predicted, _, confidence = run_act(model, np.stack([r[4] for r in chunk]),
                                           np.array([r[2] for r in chunk], dtype=np.int32), max_steps=max_steps)
        tokens.append(predicted)
        halt.append(confidence)
        if on_batch:
            on_batch(len(chunk))
    tokens, halt = np.concatenate(tokens), np.concatenate(halt)
    final = np.clip(halt[:, -1], 1e-7, 1 - 1e-7)
    final_logits = np.log(final) - np.log1p(-final)
    solutions = []
    for p, puzzle in enumerate(puzzles):
        attempts, mine = [], [i for i, r in enumerate(rows) if r[0] == p]
        for t in range(len(puzzle.test)):
            picked = [i for i in mine if rows[i][1] == t]
            ranked = arc.vote(tokens[picked], final_logits[picked], [rows[i][3] for i in picked])
            attempts.append(arc.top_attempts(ranked, 2))
        expected = puzzle.solution
        if expected is None:
            solved, reason = False, "no known output"
        else:
            hits = sum(any(arc.grid_equal(a, e) for a in tries) for tries, e in zip(attempts, expected))
            solved, reason = hits == len(expected), f"{hits}/{len(expected)} test outputs among the top 2 attempts"
        solutions.append(Solution(puzzle, [tries[0] for tries in attempts], solved, reason, halt.shape[1],
                                  [float(c) for c in halt[mine].mean(axis=0)], attempts))
    return solutions
