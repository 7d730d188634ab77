"""From puzzle files to checked answers: read, validate, encode with the task, run the ACT loop, decode, check.

``solve_files`` is the whole pipeline of ``hrm-mlx solve`` (the command line only renders what it reports):
puzzle files are read and their task detected, each task's puzzles go to a model (the one shipped for the task by
default), every puzzle gives a ``Result`` (its ``Solution``, or why it could not be solved) as soon as its batch is
done, and each task a ``TaskSummary`` (with its submission file and scores, for tasks that have them). ``Solver``
solves puzzles already in memory with a loaded model.

Puzzles of one task are solved in batches of rows (``Task.queries``: one per puzzle; ARC: one per learned version
of each test input, which then vote). Each puzzle thinks for as many ACT steps as it needs, up to a budget:
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
import re
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from io import TextIOWrapper
from pathlib import Path
from typing import Callable, Iterator

import mlx.core as mx
import numpy as np

from hrm_mlx import tasks
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import act
from hrm_mlx.tasks.base import Answer
from hrm_mlx.tasks.formats import is_csv_header, lines_from
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
    answer: object
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
        raise HrmMlxError(f"no shipped model for task {task!r}; give a model")
    return folder


def task_of(config: dict, model=None) -> tuple[tasks.Task, dict]:
    """The task a model was trained for, and the encoding options its config records. Given the model, a canvas
    it is not tied to (``runs_at_any_size``) becomes the largest side it takes."""
    info = config.get("task") or {}
    if info.get("name") is None:
        raise HrmMlxError("the model's config.json does not say which task it solves (no task.name)")
    task = tasks.get(info["name"])
    options = task.options(info)
    if model is not None and model.runs_at_any_size and task.any_size:
        options["canvas"] = ANY_SIZE_LIMIT
    return task, options


def step_budget(model, trained_canvas: int | None = None, canvas: int | None = None) -> int:
    """The default most ACT steps for puzzles on ``canvas`` (see the module docstring)."""
    steps = model.args.halt_max_steps
    if trained_canvas and canvas and canvas > trained_canvas:
        steps = math.ceil(steps * (canvas / trained_canvas) ** 2)
    return THINK_LONGER * steps


def run_act(model, inputs: np.ndarray, puzzle_identifiers: np.ndarray, *, max_steps: int, stop: str = "never",
            given: np.ndarray | None = None, on_step: Callable | None = None,
            eval_step: Callable | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the ACT loop on one batch for at most ``max_steps`` steps, each row until ``stop`` (a STOP_RULES
    key) ends it. ``given`` (bool, like ``inputs``) marks cells whose input token is the answer (a model
    trained without loss on them predicts anything there). Returns (predicted tokens at each row's last step
    [B, seq], steps used [B], sigmoid(q_halt) per step [B, steps run]). ``on_step(t, tokens [B, seq], token
    confidence [B, seq], sigmoid(q_halt) [B], running [B])`` sees every step (``running``: the rows still
    thinking at step t). ``eval_step``: the model's compiled step (act.make_eval_step) to reuse across batches."""
    if stop not in STOP_RULES:
        raise HrmMlxError(f"unknown stop rule {stop!r}; known: {', '.join(STOP_RULES)}")
    batch = {"inputs": mx.array(inputs, dtype=mx.int32), "labels": mx.zeros(inputs.shape, dtype=mx.int32),
             "puzzle_identifiers": mx.array(puzzle_identifiers, dtype=mx.int32)}
    step = eval_step or act.make_eval_step(model, halt_max_steps=max_steps)
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


class Solver:
    """A model ready to solve puzzles of its task: ``validate`` one, ``solve`` many. ``identifiers`` are the model's
    puzzle names (io.load_identifiers; ARC models answer only the tasks named there). ``num_aug`` versions of each
    puzzle are solved and vote (default: the task's ``default_versions``; Sudoku and mazes: the puzzle and its
    symmetric copies, ARC: the learned versions of a task). ``max_steps`` overrides the step budget and ``stop`` (a
    STOP_RULES key) ends a puzzle's thinking; a task solved as the official evaluation (ARC's voting) always runs
    the trained steps."""

    def __init__(self, model, config: dict, identifiers: list[str] | None = None, *, max_steps: int | None = None,
                 stop: str = "stable", batch_size: int = 64, num_aug: int | None = None):
        if stop not in STOP_RULES:
            raise HrmMlxError(f"unknown stop rule {stop!r}; known: {', '.join(STOP_RULES)}")
        self.model, self.batch_size, self.max_steps = model, batch_size, max_steps
        self.task, self.limits = task_of(config, model)
        info = config.get("task") or {}
        self.options = self.task.options(info)  # encoding options: the canvas the model was trained on
        # A model that runs at any size solves each batch on the canvas of its largest grid; batches of similar
        # sizes waste the least work.
        self.any_size = model.runs_at_any_size and self.task.any_size and "canvas" in self.options
        self.free_only = info.get("supervise") == "free"
        self.stop = "never" if self.task.fixed_steps else stop
        self.context = self.task.solver_context(identifiers, num_aug)
        self._steps: dict[int, Callable] = {}  # compiled eval steps by budget, for this model only

    def validate(self, puzzle) -> str | None:
        """Raise HrmMlxError when the model cannot solve ``puzzle`` (for a grid beyond its canvas, saying which
        models take it) or when no answer can pass the checker (the task's exact solver: a Sudoku without a
        solution); else the note the user should read with the answer (a Sudoku with several solutions)."""
        try:
            self.task.validate(puzzle, **self.limits)
        except HrmMlxError as error:
            canvas = self.limits.get("canvas")
            if self.task.any_size and canvas and self.task.side(puzzle) > canvas:
                raise HrmMlxError(f"{error} ({self._larger_grids()})") from None
            raise
        self.task.check_solvable(puzzle, self.context)
        return self.task.exact_check(puzzle)

    def _larger_grids(self) -> str:
        """Which models solve grids larger than this one's canvas."""
        if self.model.runs_at_any_size:
            return f"no model here solves grids above {ANY_SIZE_LIMIT}x{ANY_SIZE_LIMIT}: they take too much memory"
        side = self.limits["canvas"]
        hint = (f"this model's canvas is {side}x{side}; a model whose token mixer is the grid convolution runs at any "
                f"size up to {ANY_SIZE_LIMIT}x{ANY_SIZE_LIMIT}")
        try:
            from hrm_mlx import io

            shipped = shipped_model(self.task.name)
            if io.load(shipped)[0].runs_at_any_size:
                hint += f", as the shipped {self.task.name} model does ({shipped}, what solves when no model is named)"
        except HrmMlxError:
            pass
        return hint

    def rows(self, puzzles: list) -> int:
        """How many model rows the puzzles take (progress totals)."""
        return sum(len(self.task.queries(puzzle, self.context)) for puzzle in puzzles)

    def budget(self, canvas: int | None) -> int:
        if self.max_steps:
            return self.max_steps
        if self.task.fixed_steps:
            return self.model.args.halt_max_steps
        return step_budget(self.model, self.options.get("canvas"), canvas)

    def _eval_step(self, budget: int) -> Callable:
        if budget not in self._steps:
            self._steps[budget] = act.make_eval_step(self.model, halt_max_steps=budget)
        return self._steps[budget]

    def solve(self, puzzles: list, *, trace: bool = False, on_step: Callable[[int, TraceStep], None] | None = None,
              on_batch: Callable[[int], None] | None = None) -> list[Solution]:
        """Solutions of ``puzzles`` (validated beforehand), in their order (see ``iter_solve``)."""
        solutions: list = [None] * len(puzzles)
        for index, solution in self.iter_solve(puzzles, trace=trace, on_step=on_step, on_batch=on_batch):
            solutions[index] = solution
        return solutions

    def iter_solve(self, puzzles: list, *, trace: bool = False,
                   on_step: Callable[[int, TraceStep], None] | None = None,
                   on_batch: Callable[[int], None] | None = None) -> Iterator[tuple[int, Solution]]:
        """(index, Solution) of each puzzle, in order, as soon as it and those before it are done (a model that runs
        at any size solves the puzzles from the smallest grid up). ``trace`` keeps each puzzle's steps in
        ``Solution.trace``; ``on_step(puzzle index, step)`` sees every step as it runs; ``on_batch(n)`` counts
        the rows done (of ``rows``: a puzzle whose copies need not run counts them as done).

        When the task's checker proves an answer right (``Task.proven_by_check``), the puzzles of each batch are
        solved alone first and only those whose answer fails the check are solved again as symmetric copies, which
        then vote with the first answer: a puzzle's copies could only turn a proven answer into a wrong one, and
        an easy puzzle costs one row instead of all its versions."""
        task = self.task
        queries = [task.queries(puzzle, self.context) for puzzle in puzzles]
        followed = set()
        if trace or on_step is not None:
            followed = {(p, k) for p, puzzle in enumerate(puzzles)
                        if (k := task.traced_query(puzzle, queries[p])) is not None}
        answers: dict[int, dict[int, Answer]] = {p: {} for p in range(len(puzzles))}
        traces: dict[int, list[TraceStep]] = {}
        wanted: dict[int, int] = {}  # how many answers each puzzle waits for, once that is known
        ready = 0  # puzzles are yielded in their order: all before this one are

        def finished() -> Iterator[tuple[int, Solution]]:
            nonlocal ready
            while ready < len(puzzles) and len(answers[ready]) == wanted.get(ready):
                yield ready, self._solution(puzzles[ready], [answers[ready][k] for k in range(wanted[ready])],
                                            traces.get(ready) if trace else None)
                ready += 1

        def run(rows: list) -> Iterator[tuple[int, Solution]]:
            for done in self._answer_rows(puzzles, rows, followed, on_step, traces):
                for p, k, answer in done:
                    answers[p][k] = answer
                if on_batch:
                    on_batch(len(done))
                yield from finished()

        if not (task.proven_by_check and any(len(mine) > 1 for mine in queries)):
            wanted.update((p, len(mine)) for p, mine in enumerate(queries))
            yield from run([(p, k, query) for p, mine in enumerate(queries) for k, query in enumerate(mine)])
            return
        for start in range(0, len(puzzles), self.batch_size):
            window = range(start, min(start + self.batch_size, len(puzzles)))
            yield from run([(p, 0, queries[p][0]) for p in window])
            copies = []
            for p in window:
                if self._solution(puzzles[p], [answers[p][0]], None).solved:
                    wanted[p] = 1
                    if on_batch and len(queries[p]) > 1:
                        on_batch(len(queries[p]) - 1)
                else:
                    wanted[p] = len(queries[p])
                    copies += [(p, k, query) for k, query in enumerate(queries[p]) if k > 0]
            yield from finished()
            yield from run(copies)

    def _answer_rows(self, puzzles: list, rows: list, followed: set, on_step, traces: dict) -> Iterator[list]:
        """Run ``rows`` ((puzzle index, query index, Query)) in batches; after each, its (p, k, Answer)s (the traces
        of followed rows go into ``traces``)."""
        task = self.task
        if self.any_size:
            rows = sorted(rows, key=lambda row: task.side(row[2].item))
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            options = dict(self.options)
            if self.any_size:
                options["canvas"] = max(task.side(query.item) for _, _, query in chunk)
            inputs = np.stack([task.encode_query(query.item, **options) for _, _, query in chunk])
            given = ~task.free_cells(inputs) if self.free_only else None
            recorder = self._recorder(puzzles, chunk, inputs, followed, on_step)
            budget = self.budget(options.get("canvas"))
            tokens, steps, confidence = run_act(
                self.model, inputs, np.array([query.identifier for _, _, query in chunk], dtype=np.int32),
                max_steps=budget, stop=self.stop, given=given, on_step=recorder, eval_step=self._eval_step(budget))
            done = []
            for row, (p, k, query) in enumerate(chunk):
                done.append((p, k, Answer(query, tokens[row], int(steps[row]),
                                          [float(c) for c in confidence[row, :steps[row]]])))
                if recorder is not None and row in recorder.traces:
                    traces[p] = recorder.traces[row]
            yield done

    def _recorder(self, puzzles, chunk, inputs, followed, on_step) -> Recorder | None:
        task = self.task
        mine = {row: (p, query) for row, (p, k, query) in enumerate(chunk) if (p, k) in followed}
        if not mine:
            return None
        return Recorder(lambda row, t: task.trace_decode(puzzles[mine[row][0]], mine[row][1], t),
                        lambda row, grid: task.trace_check(puzzles[mine[row][0]], grid),
                        {row: task.trace_start(puzzles[p], query, inputs[row]) for row, (p, query) in mine.items()},
                        None if on_step is None else lambda row, step: on_step(mine[row][0], step))

    def _solution(self, puzzle, answers: list[Answer], trace: list[TraceStep] | None) -> Solution:
        answer, attempts = self.task.combine(puzzle, answers)
        solved, reason = self.task.verdict(puzzle, answer, attempts)
        steps = max(a.steps for a in answers)
        # per step, the mean halting confidence of the rows that ran it (one row: its own)
        confidence = [float(np.mean([a.halt_confidence[t] for a in answers if t < a.steps])) for t in range(steps)]
        return Solution(puzzle, answer, solved, reason, steps, confidence, attempts, trace)


def solve(model, config: dict, puzzles: list, *, identifiers: list[str] | None = None, max_steps: int | None = None,
          stop: str = "stable", batch_size: int = 64, num_aug: int | None = None, on_batch: Callable[[int], None] | None = None,
          trace: bool = False, on_step: Callable[[int, TraceStep], None] | None = None) -> list[Solution]:
    """Solve puzzles of the model's task (validated beforehand: ``Solver.validate``), as ``Solver`` does."""
    solver = Solver(model, config, identifiers, max_steps=max_steps, stop=stop, batch_size=batch_size,
                    num_aug=num_aug)
    return solver.solve(puzzles, trace=trace, on_step=on_step, on_batch=on_batch)


# -- the pipeline of hrm-mlx solve --------------------------------------------------------------------------------

STDIN = "-"  # the path that reads standard input
PART = 1 << 20  # characters read at a time from a large input
STREAM_ABOVE = 4 * PART  # a larger input is solved part by part as it is read (see _file_items)
CHUNK_BATCHES = 8  # a task's puzzles are solved once this many batches of them wait: answers come as input is read


@dataclass
class Result:
    """One puzzle of a run (or an input that gave none): its solution, or the one-line reason it has none."""

    source: str  # the file, with #N (and the puzzle's own name) when it holds several puzzles
    task: str | None
    solution: Solution | None = None
    error: str | None = None
    note: str | None = None  # what the task's exact solver says of the puzzle (a Sudoku with several solutions)

    def to_json(self) -> dict:
        """The puzzle's record: verdict, the exact solver's note, steps, halting confidence, the answer as the task
        writes it (ARC: the attempts) and, when traced, every step."""
        if self.solution is None:
            return {"source": self.source, "task": self.task, "error": self.error}
        s = self.solution
        record = {"source": self.source, "task": self.task, "solved": s.solved, "reason": s.reason,
                  **({"note": self.note} if self.note else {}),
                  "steps": s.steps, "halt_confidence": [round(c, 4) for c in s.halt_confidence]}
        if s.attempts is None:
            record["answer"] = tasks.get(self.task).to_text(s.answer)
        else:
            record["attempts"] = [[np.asarray(grid).tolist() for grid in tries] for tries in s.attempts]
        if s.trace is not None:
            record["trace"] = [step.to_json() for step in s.trace]
        return record


@dataclass
class TaskSummary:
    """What solving one task's puzzles gave."""

    task: str
    model: str
    count: int  # puzzles solved (failures excluded)
    solved: int
    mean_steps: float
    seconds: float
    submission: dict | None = None  # the task's submission file, for tasks that have one (ARC: Kaggle's)
    scores: list[tuple[str, float, str | None]] = field(default_factory=list)  # against the answers file

    def to_json(self) -> dict:
        return {"task": self.task, "model": self.model, "puzzles": self.count, "solved": self.solved,
                "mean_steps": round(self.mean_steps, 3), "seconds": round(self.seconds, 3),
                "scores": {name: value for name, value, _ in self.scores}}


class SolveCallback:
    """What ``solve_files`` reports as it works; every method does nothing by default."""

    def on_result(self, result: Result) -> None:
        """A puzzle is solved, or a puzzle (or an input) failed."""

    def on_task_start(self, task: tasks.Task, puzzles: list, rows: int, more: bool) -> None:
        """A task's valid ``puzzles`` (their Results will follow) take ``rows`` model rows. ``more``: further
        puzzles of the run may follow (a large input, solved as it is read); False for the last of them."""

    def on_batch(self, rows: int) -> None:
        """``rows`` more model rows are done."""

    def on_step(self, task: tasks.Task, puzzle, step: TraceStep) -> None:
        """A step of the run's first puzzle (with ``follow_first``)."""

    def on_task_done(self, summary: TaskSummary) -> None:
        """A task's puzzles are all done."""


def puzzle_suffixes() -> set[str]:
    """File extensions of puzzle files (any task's), and none."""
    return {"", *(suffix for task in tasks.all_tasks() for suffix in task.extensions)}


def puzzle_files(paths: list[Path | str]) -> list[tuple[Path | str, bool]]:
    """(file, found in a folder) for ``paths``: files as given ('-' = standard input), and for a folder every file
    below it that is not hidden (hidden folders are skipped too), in order. A folder's file with no puzzle
    extension is taken only when its content reads as puzzles (``_file_items``), as it would be named directly."""
    files: list[tuple[Path | str, bool]] = []
    for path in paths:
        if str(path) == STDIN:
            files.append((STDIN, False))
            continue
        path = Path(path)
        if path.is_dir():
            files += sorted(((p, True) for p in path.rglob("*") if p.is_file()
                             and not any(part.startswith(".") for part in p.relative_to(path).parts)), key=str)
        else:
            files.append((path, False))
    return files


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HrmMlxError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HrmMlxError(f"{path}: cannot read ({error.__class__.__name__})") from None


def read_puzzles(path: Path, task: str | None = None) -> tuple[tasks.Task, list]:
    """(task, puzzles) of one file (the task detected from the content unless named); HrmMlxError names the
    file on any problem."""
    text = read_text(path)
    found = tasks.get(task) if task else tasks.detect(text, str(path))  # its errors name the file
    try:
        return found, found.parse_file(text, path.stem)
    except HrmMlxError as error:
        raise HrmMlxError(f"{path}: {error}") from None


@dataclass
class _Item:
    """A puzzle read from an input, or why an input (or a part of it) gave none."""

    source: str
    task: tasks.Task | None
    puzzle: object = None
    error: str | None = None


class _Input:
    """One input, read PART characters at a time: standard input or a file."""

    def __init__(self, path: Path | str):
        self.name = "stdin" if path == STDIN else str(path)
        self.stem = None if path == STDIN else Path(path).stem
        self.suffix = "" if path == STDIN else Path(path).suffix.lower()
        try:
            if path == STDIN:
                self.handle = TextIOWrapper(sys.stdin.buffer, encoding="utf-8")
            else:
                self.handle = open(path, encoding="utf-8", newline="")
        except FileNotFoundError:
            raise HrmMlxError(f"{self.name}: no such file") from None
        except OSError as error:
            raise HrmMlxError(f"{self.name}: cannot read ({error.__class__.__name__})") from None

    def read(self, size: int = -1) -> str:
        try:
            return self.handle.read(size)
        except (OSError, UnicodeDecodeError) as error:
            raise HrmMlxError(f"{self.name}: cannot read ({error.__class__.__name__})") from None

    def close(self) -> None:
        if self.handle is not sys.stdin:
            self.handle.close()


def _cut(text: str, unit: str) -> tuple[str, str]:
    """(the complete records of ``text``, the rest): records end at a line break ("line") or an empty line
    ("block")."""
    end = text.rfind("\n") + 1 if unit == "line" else max(text.rfind("\n\n"), text.rfind("\n\r\n")) + 1
    return text[:end], text[end:]


def _unit(text: str, count: int) -> str | None:
    """How the ``count`` puzzles of ``text`` are laid out: one a line ("line"; a CSV header aside), one a block of
    lines between empty lines ("block"), or otherwise (None: the input is read whole)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and is_csv_header(lines[0]):
        lines = lines[1:]
    if len(lines) == count:
        return "line"
    blocks = [block for block in re.split(r"\r?\n[ \t]*\r?\n", text) if block.strip()]
    return "block" if len(blocks) == count else None


def _parsed(found: tasks.Task, text: str, stem: str | None, first_line: int) -> list:
    with lines_from(first_line):
        return found.parse_file(text, stem)


def _file_items(path: Path | str, task: str | None, in_folder: bool) -> Iterator[_Item]:
    """The puzzles of one input, as they are read. An input up to STREAM_ABOVE characters is read whole; a larger
    one whose puzzles are one a line (CSV rows, JSONL, flat grids) or blocks between empty lines is parsed part by
    part (a CSV header goes with every part), so solving starts before it has all been read; any other large
    input is read whole. A file found in a folder without a puzzle extension is skipped unless it reads as
    puzzles."""
    quiet = in_folder and Path(path).suffix.lower() not in puzzle_suffixes()
    named = tasks.get(task) if task else None
    try:
        source = _Input(path)
    except HrmMlxError as error:
        if not quiet:
            yield _Item(str(path), named, error=str(error))
        return
    try:
        yield from _input_items(source, named, quiet)
    finally:
        source.close()


def _input_items(source: _Input, named: tasks.Task | None, quiet: bool) -> Iterator[_Item]:
    count = 0

    def items(found: tasks.Task, puzzles: list, several: bool) -> Iterator[_Item]:
        nonlocal count
        for puzzle in puzzles:
            count += 1
            label = source.name
            if several:
                name = found.name_of(puzzle)
                label += f"#{count}" + (f" ({name})" if name and name != source.stem else "")
            yield _Item(label, found, puzzle)

    def read(text: str) -> tuple[tasks.Task | None, list | None, str | None]:
        """(task, puzzles, None) of ``text``, or (task or None when not detected, None, the reason)."""
        found = named
        try:
            found = found or tasks.detect(text, source.name)
            return found, _parsed(found, text, source.stem, 1), None
        except HrmMlxError as error:
            return found, None, str(error) if found is None else f"{source.name}: {error}"

    try:
        text = source.read(STREAM_ABOVE)
    except HrmMlxError as error:
        if not quiet:
            yield _Item(source.name, named, error=str(error))
        return
    unit = None
    if len(text) == STREAM_ABOVE:  # a large input: parse its first complete lines to see how its puzzles lie
        head, rest = _cut(text, "line")
        found, puzzles, reason = read(head)
        unit = _unit(head, len(puzzles)) if puzzles else None
        if unit == "block":
            head, rest = _cut(text, "block")
            found, puzzles, reason = read(head)
    if unit is None:  # the whole input at once
        try:
            text += source.read()
        except HrmMlxError as error:
            if not quiet:
                yield _Item(source.name, named, error=str(error))
            return
        head, rest = text, ""
        found, puzzles, reason = read(text)
    if puzzles is None:
        if not (quiet and found is None):
            yield _Item(source.name, found, error=reason)
        return
    yield from items(found, puzzles, unit is not None or len(puzzles) > 1)
    if unit is None:
        return
    first = head.lstrip().split("\n", 1)[0]
    header = first + "\n" if is_csv_header(first) else ""

    def parse(text: str, line: int, each: bool) -> Iterator[_Item]:
        """The puzzles of ``text`` (from line ``line``); when it holds a bad one, each record on its own (``each``),
        so that only the bad ones fail."""
        try:
            puzzles = _parsed(found, header + text, source.stem, line - bool(header))
        except HrmMlxError as error:
            if not each:
                yield _Item(source.name, found, error=f"{source.name}: {error}")
                return
            for start, record in _records(text, unit, line):
                yield from parse(record, start, False)
        else:
            yield from items(found, puzzles, True)

    line = 1 + head.count("\n")
    while True:
        try:
            chunk = source.read(PART)
        except HrmMlxError as error:
            yield _Item(source.name, found, error=str(error))
            return
        part, rest = _cut(rest + chunk, unit) if chunk else (rest, "")
        if part.strip():
            yield from parse(part, line, True)
        line += part.count("\n")
        if not chunk:
            return


def _records(text: str, unit: str, line: int) -> Iterator[tuple[int, str]]:
    """(first line, text) of each record of ``text`` (which starts at line ``line``): its non-blank lines
    ("line"), or its blocks of lines between empty lines ("block")."""
    block, start = [], line
    for number, row in enumerate(text.split("\n"), line):
        if row.strip() and unit == "line":
            yield number, row + "\n"
        elif unit == "block" and row.rstrip("\r"):
            block.append(row)
            start = number if len(block) == 1 else start
        elif block:
            yield start, "\n".join(block) + "\n"
            block = []
    if block:
        yield start, "\n".join(block) + "\n"


def _items(paths: list, task: str | None, limit: int | None) -> Iterator[_Item]:
    """Every puzzle (and every input error) of ``paths``, in order, at most ``limit`` puzzles."""
    taken = 0
    for path, in_folder in puzzle_files(paths):
        for item in _file_items(path, task, in_folder):
            if item.error is None:
                if limit is not None and taken >= limit:
                    return
                taken += 1
            yield item


class _TaskRun:
    """One task's puzzles in a run of solve_files: its Solver, the puzzles waiting to be solved, the totals."""

    def __init__(self, found: tasks.Task, model: str | None, answers_text: str | None, report: SolveCallback,
                 **options):
        from hrm_mlx import io

        self.task, self.answers_text, self.report = found, answers_text, report
        self.source = model or str(shipped_model(found.name))
        loaded, config = io.load(self.source)
        self.solver = Solver(loaded, config, io.load_identifiers(self.source), **options)
        if self.solver.task is not found:
            raise HrmMlxError(f"the model solves {self.solver.task.name}, not {found.name} puzzles")
        self.waiting: list[tuple[str, object]] = []
        self.count = self.solved = self.steps = 0
        self.seconds = 0.0
        self.kept: list[Solution] | None = [] if found.submission_file else None  # for the submission file

    def add(self, label: str, puzzle) -> None:
        self.waiting.append((label, puzzle))

    def flush(self, more: bool, trace: bool, follow: bool) -> None:
        """Solve the waiting puzzles (``follow``: report the first one's steps as they run)."""
        labelled, self.waiting = self.waiting, []
        found, report = self.task, self.report
        if self.answers_text is not None and found.answers_file and labelled:
            puzzles = found.attach_answers([puzzle for _, puzzle in labelled], self.answers_text)
            labelled = [(label, puzzle) for (label, _), puzzle in zip(labelled, puzzles)]
        good, notes = [], []
        for label, puzzle in labelled:
            try:
                notes.append(self.solver.validate(puzzle))
                good.append((label, puzzle))
            except HrmMlxError as error:
                report.on_result(Result(label, found.name, error=f"{label}: {error}"))
        if not good:
            return
        puzzles = [puzzle for _, puzzle in good]
        report.on_task_start(found, puzzles, self.solver.rows(puzzles), more)
        start = time.perf_counter()
        on_step = (lambda index, step: index == 0 and report.on_step(found, puzzles[0], step)) if follow else None
        for index, solution in self.solver.iter_solve(puzzles, trace=trace or follow, on_step=on_step,
                                                      on_batch=report.on_batch):
            self.count += 1
            self.solved += solution.solved
            self.steps += solution.steps
            if self.kept is not None:
                self.kept.append(solution)
            report.on_result(Result(good[index][0], found.name, solution, note=notes[index]))
        self.seconds += time.perf_counter() - start

    def summary(self, submission: Path | None) -> TaskSummary:
        summary = TaskSummary(self.task.name, self.source, self.count, self.solved, self.steps / self.count,
                              self.seconds, self.task.submission(self.kept) if self.kept is not None else None)
        if summary.submission is not None and submission is not None:
            self.task.write_submission(submission, summary.submission)
        if summary.submission is not None and self.answers_text is not None:
            summary.scores = self.task.scores(summary.submission, self.answers_text)
        return summary


def solve_files(paths: list[Path | str], *, model: str | None = None, task: str | None = None,
                answers: Path | None = None, submission: Path | None = None, max_steps: int | None = None,
                stop: str = "stable", batch_size: int = 64, num_aug: int | None = None, trace: bool = False,
                follow_first: bool = False, limit: int | None = None,
                callback: SolveCallback | None = None) -> list[TaskSummary]:
    """Solve every puzzle of the files and folders ``paths`` ('-' reads standard input; see the module docstring
    and ``_file_items``), at most ``limit`` of them. ``model`` (a folder, checkpoint or Hub repo) serves every
    task; by default each task's shipped model. ``answers`` is a separate answers file (ARC's solutions: scores
    the submission); ``submission`` is where the submission file of tasks that have one is written. ``trace``
    keeps every puzzle's steps; ``follow_first`` traces the first puzzles solved and reports the first one's steps
    as they run. Results go to ``callback`` as they come, a task's puzzles solved as soon as CHUNK_BATCHES batches
    of them wait; a puzzle that fails does not stop the others. Returns the summary of each task."""
    report = callback or SolveCallback()
    answers_text = read_text(Path(answers)) if answers else None
    options = dict(max_steps=max_steps, stop=stop, batch_size=batch_size, num_aug=num_aug)
    runs: dict[str, _TaskRun] = {}
    following = follow_first

    def flush(run: _TaskRun, more: bool) -> None:
        nonlocal following
        if run.waiting:
            run.flush(more, trace, following)
            following = False

    for item in _items(paths, task, limit):
        if item.error is not None:
            report.on_result(Result(item.source, item.task and item.task.name, error=item.error))
            continue
        run = runs.get(item.task.name)
        if run is None:
            run = runs[item.task.name] = _TaskRun(item.task, model, answers_text, report, **options)
        run.add(item.source, item.puzzle)
        if len(run.waiting) >= CHUNK_BATCHES * batch_size:
            flush(run, more=True)
    summaries = []
    for run in runs.values():
        flush(run, more=False)
        if run.count:
            summaries.append(run.summary(submission))
            report.on_task_done(summaries[-1])
    return summaries
