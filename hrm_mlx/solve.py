"""From puzzles to checked answers: encode with the task module, run the ACT loop, decode, check.

Puzzles of one task are solved in batches. Each puzzle thinks for as many ACT steps as it needs, up to a budget:
by default it stops once its answer has stayed the same for ``STABLE_STEPS`` steps and its halt head agrees
(``stop="stable"``), within ``THINK_LONGER`` times the steps the model was trained with, scaled by the grid's
area when a model that runs at any size meets a grid larger than its training canvas (information crosses a maze
about one cell per convolution, and path lengths grow with the area). ``max_steps`` sets the budget;
``stop="halt"`` stops at the halt head's first "halt", ``stop="never"`` runs the whole budget (as the official
evaluation runs halt_max_steps). ``trace=True`` keeps every step's decoded answer (``hrm_mlx.trace``) and
``on_step`` sees each as it is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

import mlx.core as mx
import numpy as np

from hrm_mlx import tasks
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import act
from hrm_mlx.trace import Recorder, TraceStep, token_confidence

STOP_RULES = {
    "stable": "stop a puzzle once its answer has not changed for two steps and its halt head says halt",
    "halt": "stop a puzzle at the first step where its halt head says halt",
    "never": "run every step of the budget",
}
STABLE_STEPS = 2
THINK_LONGER = 4
ANY_SIZE_LIMIT = 256  # largest grid side solved by a model that runs at any size (memory, not parameters)


@dataclass
class Solution:
    puzzle: object
    answer: np.ndarray
    solved: bool
    reason: str
    steps: int
    halt_confidence: list[float] = field(default_factory=list)  # sigmoid(q_halt) after each ACT step
    attempts: list | None = None  # ARC: the ranked attempts (top 2 grids) for each test input
    trace: list[TraceStep] | None = None  # with trace=True: every step's answer (ARC: the first test input)


def shipped_model(task: str) -> Path:
    """The model folder shipped for ``task`` inside the package (weights/<task>/)."""
    folder = Path(str(resources.files("hrm_mlx.weights") / task))
    if not (folder / "config.json").is_file():
        raise HrmMlxError(f"no shipped model for task {task!r}; pass --model PATH_OR_REPO")
    return folder


def task_of(config: dict, model=None) -> tuple[tasks.Task, dict]:
    """The task a model was trained for, and the encoding options its config records. Given the model, a canvas
    it is not tied to (``runs_at_any_size``) becomes the largest side it takes."""
    info = config.get("task") or {}
    if info.get("name") is None:
        raise HrmMlxError("the model's config.json does not say which task it solves (no task.name)")
    task = tasks.get(info["name"])
    options = task.options(info)
    if model is not None and model.runs_at_any_size and "canvas" in options:
        options["canvas"] = ANY_SIZE_LIMIT
    return task, options


def step_budget(model, trained_canvas: int | None = None, canvas: int | None = None) -> int:
    """The default most ACT steps for puzzles on ``canvas`` (see the module docstring)."""
    steps = model.args.halt_max_steps
    if trained_canvas and canvas and canvas > trained_canvas:
        steps = math.ceil(steps * (canvas / trained_canvas) ** 2)
    return THINK_LONGER * steps


def run_act(model, inputs: np.ndarray, puzzle_identifiers: np.ndarray, *, max_steps: int, stop: str = "never",
            given: np.ndarray | None = None,
            on_step: Callable | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the ACT loop on one batch for at most ``max_steps`` steps, each row until ``stop`` (a STOP_RULES
    key) ends it. ``given`` (bool, like ``inputs``) marks cells whose input token is the answer (a model
    trained without loss on them predicts anything there). Returns (predicted tokens at each row's last step
    [B, seq], steps used [B], sigmoid(q_halt) per step [B, steps run]). ``on_step(t, tokens [B, seq], token
    confidence [B, seq], sigmoid(q_halt) [B], running [B])`` sees every step (``running``: the rows still
    thinking at step t)."""
    if stop not in STOP_RULES:
        raise HrmMlxError(f"unknown stop rule {stop!r}; known: {', '.join(STOP_RULES)}")
    batch = {"inputs": mx.array(inputs, dtype=mx.int32), "labels": mx.zeros(inputs.shape, dtype=mx.int32),
             "puzzle_identifiers": mx.array(puzzle_identifiers, dtype=mx.int32)}
    step = _eval_step(model, max_steps)
    carry = act.initial_carry(model, batch)
    predictions = np.zeros(inputs.shape, dtype=np.int32)
    stopped = np.zeros(len(inputs), dtype=bool)
    steps_used = np.full(len(inputs), max_steps, dtype=np.int32)
    unchanged = np.zeros(len(inputs), dtype=np.int32)  # steps for which each row's answer has not changed
    previous = None
    confidence = []
    for t in range(max_steps):
        carry, outputs, _, _ = step(carry, batch)
        tokens = np.array(mx.argmax(outputs["logits"], axis=-1))
        if given is not None:
            tokens = np.where(given, inputs, tokens)
        confidence.append(np.array(mx.sigmoid(outputs["q_halt_logits"])))
        if previous is not None:
            unchanged = np.where((tokens == previous).all(axis=1), unchanged + 1, 0)
        previous = tokens
        halting = np.zeros(len(inputs), dtype=bool) if stop == "never" else np.array(act.halts(model, outputs))
        if stop == "stable":
            halting &= unchanged >= STABLE_STEPS
        if on_step is not None:
            cells = np.array(token_confidence(outputs["logits"], model.args.loss_type))
            on_step(t, tokens, cells if given is None else np.where(given, 1.0, cells), confidence[-1], ~stopped)
        stop_now = ~stopped & (halting | (t == max_steps - 1))
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


def solve(model, config: dict, puzzles: list, *, max_steps: int | None = None, stop: str = "stable",
          batch_size: int = 64, on_batch: Callable[[int], None] | None = None, trace: bool = False,
          on_step: Callable[[int, TraceStep], None] | None = None) -> list[Solution]:
    """Solve puzzles of the model's task (validated beforehand with ``task_of(config, model)``'s options).
    ``max_steps`` overrides the step budget; ``on_batch(n)`` reports progress; ``trace`` keeps each puzzle's
    steps in ``Solution.trace``; ``on_step(puzzle index, step)`` sees every step of every puzzle as it runs."""
    task, encoding = task_of(config)
    trained_canvas = encoding.get("canvas")
    # A model that runs at any size solves each batch on the canvas of its largest grid; batches of similar
    # sizes waste the least work.
    any_size = trained_canvas is not None and model.runs_at_any_size
    order = sorted(range(len(puzzles)), key=lambda i: task.side(puzzles[i])) if any_size else range(len(puzzles))
    order = list(order)
    free_only = (config.get("task") or {}).get("supervise") == "free"
    solutions: list = [None] * len(puzzles)
    for start in range(0, len(order), batch_size):
        indices = order[start:start + batch_size]
        chunk = [puzzles[i] for i in indices]
        options = dict(encoding)
        if any_size:
            options["canvas"] = max(task.side(p) for p in chunk)
        inputs = np.stack([task.encode(p, **options) for p in chunk])
        budget = max_steps or step_budget(model, trained_canvas, options.get("canvas"))
        given = ~task.free_cells(inputs) if free_only else None
        recorder = None
        if trace or on_step is not None:
            recorder = Recorder(lambda row, t: task.decode(t, chunk[row]), lambda row, g: task.check(chunk[row], g),
                                {row: task.decode(tokens, p) for row, (tokens, p) in enumerate(zip(inputs, chunk))},
                                None if on_step is None else lambda row, s: on_step(indices[row], s))
        tokens, steps, confidence = run_act(model, inputs, np.zeros(len(chunk), dtype=np.int32),
                                            max_steps=budget, stop=stop, given=given, on_step=recorder)
        for i, puzzle, row in zip(indices, chunk, range(len(chunk))):
            answer = task.decode(tokens[row], puzzle)
            solved, reason = task.check(puzzle, answer)
            solutions[i] = Solution(puzzle, answer, solved, reason, int(steps[row]),
                                    [float(c) for c in confidence[row, :steps[row]]],
                                    trace=recorder.traces[row] if trace else None)
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
              batch_size: int = 64, on_batch: Callable[[int], None] | None = None, trace: bool = False,
              on_step: Callable[[int, TraceStep], None] | None = None) -> list[Solution]:
    """The official ARC evaluation for each test input: run the model on up to ``num_aug`` versions of the task
    (each with its own puzzle embedding), undo each augmentation, vote, and rank by (votes, mean halting
    confidence). Puzzles must be in ``versions``; the answer holds the top attempt per test input. ``trace`` and
    ``on_step`` (as in ``solve``) follow each puzzle's first test input in its unaugmented version (none when the
    model was trained on augmented versions only)."""
    from hrm_mlx.tasks import arc

    rows = []  # (puzzle index, test index, identifier, name, encoded augmented test input)
    for p, puzzle in enumerate(puzzles):
        for t, (test_input, _) in enumerate(puzzle.test):
            for identifier, name in versions[puzzle.id][:num_aug]:
                augmented = arc.split_name(name)[1].apply(test_input)
                rows.append((p, t, identifier, name, arc.encode_grid(augmented)))
    followed = {} if not (trace or on_step) else {  # row -> puzzle: its first test input, unaugmented
        i: r[0] for i, r in enumerate(rows) if r[1] == 0 and r[3] == versions[puzzles[r[0]].id][0][1]
        and arc.split_name(r[3])[1].is_identity}
    traces: dict[int, list[TraceStep]] = {}

    def check_first_output(p: int, grid) -> tuple[bool | None, str]:
        expected = puzzles[p].solution
        if expected is None:
            return None, "no known output"
        return (True, "equals the known output") if arc.grid_equal(grid, expected[0]) else \
            (False, "differs from the known output")

    tokens, halt = [], []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        mine = {i - start: p for i, p in followed.items() if start <= i < start + len(chunk)}
        recorder = Recorder(lambda row, t: arc.decode(t),
                            lambda row, grid: check_first_output(mine[row], grid),
                            {row: puzzles[p].test[0][0] for row, p in mine.items()},
                            None if on_step is None else lambda row, s: on_step(mine[row], s)) if mine else None
        predicted, _, confidence = run_act(model, np.stack([r[4] for r in chunk]),
                                           np.array([r[2] for r in chunk], dtype=np.int32),
                                           max_steps=max_steps or model.args.halt_max_steps, on_step=recorder)
        if recorder is not None:
            traces.update({mine[row]: steps for row, steps in recorder.traces.items()})
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
                                  [float(c) for c in halt[mine].mean(axis=0)], attempts,
                                  traces.get(p) if trace else None))
    return solutions
