"""The official ARC evaluation (arc_eval.ipynb): augmented versions of a test input vote on its answer; pass@K
scores over the ranked candidates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks.arc.augmentation import invert_prediction, split_name
from hrm_mlx.tasks.arc.dataset import BLANK_IDENTIFIER
from hrm_mlx.tasks.arc.grids import SEQ_LEN, ArcPuzzle, Grid, crop, grid_equal, grid_key


PASS_KS = (1, 2, 10, 100, 1000)  # the K of pass@K printed by the official arc_eval.ipynb


# ---------------------------------------------------------------------------------------------------------------
# Evaluation (official arc_eval.ipynb): every augmented version of a test input gets a prediction; each is cropped,
# mapped back to the original frame and hashed; identical grids pool their votes; candidates rank by (vote count,
# mean sigmoid(q_halt)) descending, ties kept in order of first appearance; pass@K = the answer among the top K.


@dataclass
class Candidate:
    """A distinct predicted grid (original frame), its vote count and mean sigmoid(q_halt) over its votes."""

    grid: Grid
    votes: int
    confidence: float


def _sigmoid(x) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))  # no overflow for large |x|


class _Ballot:
    """Votes of one test input, kept in order of first appearance."""

    def __init__(self):
        self.grids: dict[bytes, Grid] = {}
        self.votes: dict[bytes, list[float]] = {}

    def add(self, grid: Grid, confidence: float) -> None:
        key = grid_key(grid)
        self.grids.setdefault(key, grid)
        self.votes.setdefault(key, []).append(confidence)

    def ranked(self) -> list[Candidate]:
        candidates = [Candidate(self.grids[k], len(v), sum(v) / len(v)) for k, v in self.votes.items()]
        return sorted(candidates, key=lambda c: (c.votes, c.confidence), reverse=True)  # stable: ties keep order


def vote(predictions, q_halt_logits, names: Sequence[str]) -> list[Candidate]:
    """Rank the predictions [N, 900] (argmax tokens) made for augmented versions of one test input; `names[i]` is
    the (augmented) task name of row i, whose augmentation is undone after the official crop."""
    predictions = np.asarray(predictions).reshape(-1, SEQ_LEN)
    confidences = _sigmoid(np.asarray(q_halt_logits).reshape(-1))
    if not len(predictions) == len(confidences) == len(names):
        raise HrmMlxError(
            f"{len(predictions)} predictions, {len(confidences)} q_halt logits and {len(names)} names differ in number"
        )
    ballot = _Ballot()
    for tokens, confidence, name in zip(predictions, confidences, names):
        ballot.add(invert_prediction(crop(tokens), name), float(confidence))
    return ballot.ranked()


def top_attempts(candidates: Sequence[Candidate], k: int = 2) -> list[Grid]:
    """The grids of the k best candidates (fewer when there are fewer candidates)."""
    return [c.grid for c in candidates[:k]]


def pass_at_k(candidates: Sequence[Candidate], expected, k: int) -> bool:
    """True when the expected grid is among the top k candidates."""
    return any(grid_equal(grid, expected) for grid in top_attempts(candidates, k))


def collect_votes(
    puzzles: Mapping[str, ArcPuzzle] | Sequence[ArcPuzzle],
    names: Sequence[str],
    inputs,
    predictions,
    q_halt_logits,
) -> dict[str, list[list[Candidate]]]:
    """Vote over a whole evaluation: rows of input tokens [N, 900] (the test split, untranslated), predicted tokens
    [N, 900], q_halt logits [N] and task names (identifiers[puzzle_identifiers]; "<blank>" padding rows skipped).
    Each row is matched to its test input by the un-augmented cropped input, as the official notebook.
    Returns {task_id: [ranked candidates per test input]} for the given puzzles."""
    table = puzzles if isinstance(puzzles, Mapping) else {p.id: p for p in puzzles}
    inputs = np.asarray(inputs).reshape(-1, SEQ_LEN)
    predictions = np.asarray(predictions).reshape(-1, SEQ_LEN)
    confidences = _sigmoid(np.asarray(q_halt_logits).reshape(-1))
    if not len(inputs) == len(predictions) == len(confidences) == len(names):
        raise HrmMlxError("inputs, predictions, q_halt logits and names must have one row each per example")
    test_index = {  # cropped test input -> its index (the first, should a task repeat an input)
        task_id: {grid_key(inp): n for n, (inp, _) in reversed(list(enumerate(p.test)))}
        for task_id, p in table.items()
    }
    ballots = {task_id: [_Ballot() for _ in p.test] for task_id, p in table.items()}
    for name, inp, tokens, confidence in zip(names, inputs, predictions, confidences):
        if name == BLANK_IDENTIFIER:
            continue
        task_id, augmentation = split_name(name)
        if task_id not in table:
            raise HrmMlxError(f"a prediction is for task {task_id!r}, which is not among the puzzles")
        n = test_index[task_id].get(grid_key(augmentation.invert(crop(inp))))
        if n is None:
            raise HrmMlxError(f"a prediction for {name!r} has an input that is none of the task's test inputs")
        ballots[task_id][n].add(augmentation.invert(crop(tokens)), float(confidence))
    return {task_id: [b.ranked() for b in task_ballots] for task_id, task_ballots in ballots.items()}


# ---------------------------------------------------------------------------------------------------------------
# Scores and Kaggle submissions


@dataclass(frozen=True)
class ArcScore:
    """`kaggle`: per task, the fraction of its test inputs solved, averaged over tasks (the ARC Prize / Kaggle
    metric, TRM's); `strict`: the share of tasks whose test inputs are all solved (HRM arc_eval.ipynb).
    `per_task`: each task's solved fraction."""

    kaggle: float
    strict: float
    per_task: dict[str, float]


def arc_score(per_task: dict[str, float]) -> ArcScore:
    if not per_task:
        return ArcScore(0.0, 0.0, {})
    kaggle = sum(per_task.values()) / len(per_task)
    strict = sum(1 for v in per_task.values() if v == 1.0) / len(per_task)
    return ArcScore(kaggle, strict, per_task)


def score_votes(
    puzzles: Mapping[str, ArcPuzzle] | Sequence[ArcPuzzle],
    votes: Mapping[str, Sequence[Sequence[Candidate]]],
    k: int = 2,
) -> ArcScore:
    """pass@k of collect_votes output against the puzzles' known test outputs (a task missing from `votes`
    scores 0)."""
    table = puzzles if isinstance(puzzles, Mapping) else {p.id: p for p in puzzles}
    per_task = {}
    for task_id, puzzle in table.items():
        expected = puzzle.solution
        if expected is None:
            raise HrmMlxError(f"task {task_id}: the test outputs are unknown, so it cannot be scored")
        ranked = list(votes.get(task_id, []))
        ranked += [[]] * (len(expected) - len(ranked))
        solved = sum(pass_at_k(candidates, want, k) for candidates, want in zip(ranked, expected))
        per_task[task_id] = solved / len(expected)
    return arc_score(per_task)


def pass_at_k_table(
    puzzles: Mapping[str, ArcPuzzle] | Sequence[ArcPuzzle],
    votes: Mapping[str, Sequence[Sequence[Candidate]]],
    ks: Iterable[int] = PASS_KS,
) -> dict[int, ArcScore]:
    """score_votes for every K (the official notebook prints the strict score for K = 1, 2, 10, 100, 1000)."""
    return {k: score_votes(puzzles, votes, k) for k in ks}


