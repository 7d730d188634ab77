"""Kaggle submissions of ARC answers (two attempts per test input): making, checking, writing and scoring them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from hrm_mlx import atomic
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks.arc.grids import ArcPuzzle, as_grid, grid_equal, load_solutions, one_json_document
from hrm_mlx.tasks.arc.voting import ArcScore, Candidate, arc_score


# ---------------------------------------------------------------------------------------------------------------
# Kaggle submissions


def _submission_grid(grid) -> list[list[int]]:
    grid = np.asarray(grid)
    if grid.ndim != 2 or grid.size == 0:
        return [[0]]  # an empty crop cannot be submitted; a 1x1 black grid takes its place
    return as_grid(grid.astype(np.int64), "attempt").tolist()


def make_submission(
    attempts: Mapping[str, Sequence[Sequence]], puzzles: Mapping[str, ArcPuzzle] | Sequence[ArcPuzzle] | None = None
) -> dict[str, list[dict[str, list]]]:
    """The Kaggle submission {task_id: [{"attempt_1": grid, "attempt_2": grid} per test input]} from, per task and
    test input, a ranked list of grids or Candidates (e.g. collect_votes output). A missing second attempt repeats
    the first; a test input without any gets [[0]]. With `puzzles`, every puzzle gets an entry with one item per
    test input (the Kaggle checker rejects missing ones)."""
    table = None if puzzles is None else (puzzles if isinstance(puzzles, Mapping) else {p.id: p for p in puzzles})
    if table is not None:
        stray = sorted(set(attempts) - set(table))
        if stray:
            raise HrmMlxError(f"attempts for {len(stray)} task(s) not among the puzzles, e.g. {stray[0]!r}")
    submission = {}
    for task_id in (table if table is not None else attempts):
        per_test = list(attempts.get(task_id, []))
        if table is not None:
            count = len(table[task_id].test)
            if len(per_test) > count:
                raise HrmMlxError(f"task {task_id}: attempts for {len(per_test)} test inputs, the task has {count}")
            per_test += [[]] * (count - len(per_test))
        entries = []
        for ranked in per_test:
            grids = [c.grid if isinstance(c, Candidate) else c for c in ranked][:2]
            grids = [_submission_grid(g) for g in grids] or [[[0]]]
            entries.append({"attempt_1": grids[0], "attempt_2": grids[1] if len(grids) > 1 else grids[0]})
        submission[str(task_id)] = entries
    return submission


def validate_submission(submission, puzzles: Mapping[str, ArcPuzzle] | Sequence[ArcPuzzle] | None = None) -> None:
    """Raise HrmMlxError unless `submission` has the Kaggle shape (and, with `puzzles`, covers every test input)."""
    if not isinstance(submission, Mapping):
        raise HrmMlxError("a submission is a JSON object {task_id: [attempts per test input]}")
    for task_id, entries in submission.items():
        if not isinstance(entries, list) or not entries:
            raise HrmMlxError(f"submission task {task_id}: a non-empty list of attempts per test input is needed")
        for n, entry in enumerate(entries, 1):
            if not isinstance(entry, Mapping) or set(entry) != {"attempt_1", "attempt_2"}:
                raise HrmMlxError(f'submission task {task_id}, test {n}: needs exactly "attempt_1" and "attempt_2"')
            for key in ("attempt_1", "attempt_2"):
                as_grid(entry[key], f"submission task {task_id}, test {n}, {key}")
    if puzzles is not None:
        table = puzzles if isinstance(puzzles, Mapping) else {p.id: p for p in puzzles}
        for task_id, puzzle in table.items():
            if len(submission.get(task_id, [])) != len(puzzle.test):
                raise HrmMlxError(f"submission task {task_id}: needs {len(puzzle.test)} entries, one per test input")


def write_submission(path: str | Path, submission: Mapping) -> Path:
    """Write submission.json (atomically) after validate_submission; returns the path."""
    validate_submission(submission)
    return atomic.write_file(path, json.dumps(submission, separators=(",", ":")))


def score_submission(submission: Mapping | str, solutions: Mapping | str) -> ArcScore:
    """Score a submission (dict or JSON text) against a solutions file (text, or {task_id: [grid per test]}): a test
    input is solved when attempt_1 or attempt_2 equals its output; tasks are those of the solutions file
    (missing tasks score 0)."""
    if isinstance(submission, str):
        submission = one_json_document(submission, "submission")
    validate_submission(submission)
    table = load_solutions(solutions)
    per_task = {}
    for task_id, outputs in table.items():
        entries = list(submission.get(task_id, []))
        solved = 0
        for n, want in enumerate(outputs):
            if n < len(entries):
                solved += any(grid_equal(entries[n][key], want) for key in ("attempt_1", "attempt_2"))
        per_task[task_id] = solved / len(outputs)
    return arc_score(per_task)
