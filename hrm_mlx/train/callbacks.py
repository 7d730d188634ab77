"""What a training run and an evaluation report while they work, as typed calls.

The library never prints: a caller (the command line's progress bars, a notebook, a test) passes an object whose
methods it wants called; every method of the base classes does nothing, so a callback overrides only what it
shows. Only rank 0 of a data-parallel run reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class RunStart:
    """A run about to take its first step (``step`` > 0 when it resumes)."""

    run_dir: Path
    step: int
    total_steps: int
    params: int
    train_examples: int
    test_examples: int
    data: Path
    world_size: int
    resumed: bool
    compiled: bool
    eval_every: int
    checkpoint_every: int


@dataclass
class RunSummary:
    """How a run ended: after its last step, interrupted (Ctrl-C; checkpoint saved) or at its time limit."""

    run_dir: Path
    step: int
    total_steps: int
    interrupted: bool
    time_limited: bool
    eval: dict | None  # the last evaluation's metrics
    elapsed_s: float  # seconds of training steps, over every invocation of the run
    setup_s: float = 0.0  # seconds of this invocation before its first step (data, model, checkpoint)
    steps_now: int = 0  # steps taken by this invocation
    wall_s: float = 0.0  # seconds of this invocation
    model_dir: Path | None = None  # the model folder saved at the end (None when this invocation took no step)
    plot: Path | None = None  # curves.png (None without matplotlib)


class TrainCallback:
    def on_data(self, done: int, total: int, what: str) -> None:
        """Building the data set: ``done`` of ``total`` units of ``what``."""

    def on_start(self, start: RunStart) -> None:
        """Data and model are ready."""

    def on_log(self, record: dict) -> None:
        """A training log line (metrics.jsonl: step, loss, accuracy, exact_accuracy, lr, steps_per_s, eta_s, ...)."""

    def on_eval(self, step: int, metrics: dict) -> None:
        """An evaluation on the test split (exact_accuracy, accuracy, act_steps, count, ...)."""

    def on_checkpoint(self, step: int, path: Path) -> None:
        """A checkpoint was written."""

    def on_done(self, summary: RunSummary) -> None:
        """The run ended (also when interrupted or out of time)."""


class EvalCallback:
    def on_data(self, done: int, total: int, what: str) -> None:
        """Building the test set."""

    def on_start(self, total: int, data: Path) -> None:
        """``total`` test puzzles from the data folder ``data`` are about to be evaluated."""

    def on_batch(self, count: int) -> None:
        """``count`` more puzzles are evaluated."""
