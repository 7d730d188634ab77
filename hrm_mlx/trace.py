"""Watching a model think: the decoded answer after every ACT step.

HRM and TRM refine one answer step by step; a trace keeps, for each step a puzzle ran, the grid the model would
answer if it stopped there, which cells changed since the step before (step 1: since the puzzle's input), how
sure the model is of each cell (the probability of the predicted token under the normaliser it was trained with,
stablemax or softmax), its halt confidence sigmoid(q_halt), and whether the task's checker accepts that answer.
``hrm_mlx.solve.solve(..., trace=True)`` fills ``Solution.trace``; ``hrm_mlx.animate`` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import numpy as np


@dataclass
class TraceStep:
    step: int  # 1-based ACT step
    answer: np.ndarray  # the decoded answer grid after this step
    changed: list[tuple[int, int]]  # (row, column) of the cells that differ from the step before
    cell_confidence: np.ndarray  # probability of each cell's predicted token, the answer grid's shape
    halt_confidence: float  # sigmoid(q_halt)
    solved: bool | None  # the checker's verdict on this step's answer (None: nothing to check against)
    reason: str

    def to_json(self) -> dict:
        return {"step": self.step, "grid": np.asarray(self.answer).tolist(),
                "changed": [list(cell) for cell in self.changed],
                "cell_confidence": np.round(self.cell_confidence.astype(float), 3).tolist(),
                "halt_confidence": round(self.halt_confidence, 4), "solved": self.solved, "reason": self.reason}


def token_confidence(logits: mx.array, loss_type: str) -> mx.array:
    """[..., vocab] logits -> [...] probability of the argmax token, normalised as the model's loss does."""
    x = logits.astype(mx.float32)
    if loss_type == "stablemax_cross_entropy":
        scores = mx.where(x < 0, 1.0 / (1.0 - mx.minimum(x, 0.0)), mx.maximum(x, 0.0) + 1.0)
    else:
        scores = mx.exp(x - x.max(axis=-1, keepdims=True))
    return scores.max(axis=-1) / scores.sum(axis=-1)


def changed_cells(before: np.ndarray | None, after: np.ndarray) -> list[tuple[int, int]]:
    """Cells of ``after`` that differ from ``before``; every cell when the shapes differ (or nothing came before)."""
    after = np.asarray(after)
    if before is None or np.shape(before) != after.shape:
        return [(int(r), int(c)) for r, c in np.ndindex(*after.shape)]
    return [(int(r), int(c)) for r, c in np.argwhere(np.asarray(before) != after)]


def grid_confidence(confidence: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per-token confidence [seq] on the square canvas, cropped like the answers (grids sit at the top-left)."""
    side = int(round(len(confidence) ** 0.5))
    return np.asarray(confidence, dtype=np.float32).reshape(side, side)[:shape[0], :shape[1]]


class Recorder:
    """Builds a trace for some rows of a batch from run_act's per-step callback. ``start`` maps each traced row
    to the grid its changes count from at step 1 (the puzzle's input); ``decode(row, tokens)`` gives a row's
    answer grid and ``check(row, grid)`` the (solved, reason) verdict. ``on_step(row, step)`` sees each step as
    it is made (for a live view). ``traces[row]`` holds the steps."""

    def __init__(self, decode, check, start: dict[int, np.ndarray], on_step=None):
        self.decode, self.check, self.on_step = decode, check, on_step
        self.previous = dict(start)
        self.traces: dict[int, list[TraceStep]] = {row: [] for row in start}

    def __call__(self, t: int, tokens: np.ndarray, confidence: np.ndarray, halt: np.ndarray,
                 running: np.ndarray) -> None:
        for row in (int(r) for r in np.flatnonzero(running) if int(r) in self.traces):
            grid = self.decode(row, tokens[row])
            solved, reason = self.check(row, grid)
            step = TraceStep(t + 1, grid, changed_cells(self.previous[row], grid),
                             grid_confidence(confidence[row], np.shape(grid)), float(halt[row]), solved, reason)
            self.previous[row] = grid
            self.traces[row].append(step)
            if self.on_step is not None:
                self.on_step(row, step)
