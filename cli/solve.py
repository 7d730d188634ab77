"""``hrm-mlx solve``: solve puzzle files (hrm_mlx.solve.solve_files) and show what it reports."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer
from rich.table import Table

from hrm_mlx import tasks
from hrm_mlx.cli import render
from hrm_mlx.cli.render import console, err_console
from hrm_mlx.errors import HrmMlxError


class StopRule(str, Enum):
    """hrm_mlx.solve.STOP_RULES, named here so that --help needs no mlx import."""

    stable = "stable"
    halt = "halt"
    never = "never"


SHOW_AT_MOST = 4  # puzzles drawn as grids; larger runs print the summary only


class _View:
    """Renders what the pipeline reports: errors on stderr, each answer as JSON or drawn, a progress bar, the
    first puzzle thinking (--watch), each task's summary and scores."""

    def __init__(self, as_json: bool, watch: bool, batch_size: int):
        from rich.progress import Progress

        self.as_json, self.watch, self.batch_size = as_json, watch, batch_size
        self.records, self.results, self.failures = [], [], 0
        self.progress = Progress(console=err_console, transient=True)
        self.bar = self.live = None
        self.draw = False

    def on_result(self, result) -> None:
        if result.solution is None:
            self.failures += 1
            err_console.print(f"hrm-mlx: error: {result.error}", highlight=False, markup=False, soft_wrap=True)
            return
        self.results.append(result)
        self.records.append(result.to_json())
        if self.as_json:
            print(json.dumps(self.records[-1]), flush=True)
        elif self.draw:
            self._stop_live()
            console.print(f"[bold]{result.source}[/bold]")
            _draw(tasks.get(result.task), result.solution)

    def on_task_start(self, task, puzzles: list, rows: int) -> None:
        self.draw = len(puzzles) <= SHOW_AT_MOST
        following = self.watch and not self.results
        if rows > self.batch_size and not following:  # a bar only where there is more than one batch to wait for
            self.progress.start()
            self.bar = self.progress.add_task(f"solving {len(puzzles)} {task.name} puzzles", total=rows)
        if following:
            from rich.live import Live

            self.live = Live(console=console, auto_refresh=False, transient=True)
            self.live.start()

    def on_batch(self, rows: int) -> None:
        if self.bar is not None:
            self.progress.advance(self.bar, rows)

    def on_step(self, task, puzzle, step) -> None:
        if self.live is not None:
            self.live.update(render.thinking(task, puzzle, step), refresh=True)

    def on_task_done(self, summary) -> None:
        self.stop()
        if summary.scores:
            console.print("; ".join(f"{name} {value:.3f}" + (f" ({what})" if what else "")
                                    for name, value, what in summary.scores))
        if self.as_json:
            return
        table = Table(title=f"{summary.task}: summary", show_header=False, title_justify="left")
        table.add_row("solved", f"{summary.solved} / {summary.count}")
        table.add_row("exact accuracy", f"{summary.solved / summary.count:.3f}")
        table.add_row("mean ACT steps", f"{summary.mean_steps:.2f}")
        table.add_row("puzzles/s", f"{summary.count / summary.seconds:.2f}")
        console.print(table)

    def _stop_live(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def stop(self) -> None:
        """End the live views (the last answers follow as plain output)."""
        self._stop_live()
        if self.bar is not None:
            self.progress.stop()
            self.bar = None


def _draw(task, solution) -> None:
    for drawing in task.pictures(solution.puzzle, solution.answer, solution.attempts):
        console.print(render.picture(drawing))
    if solution.trace:
        from hrm_mlx.animate import caption

        for step in solution.trace:
            console.print(f"  {caption(step, len(solution.trace))}   {len(step.changed)} cells changed",
                          highlight=False)
    verdict = "[green]solved[/green]" if solution.solved else f"[red]not solved[/red] ({solution.reason})"
    halting = " ".join(f"{c:.2f}" for c in solution.halt_confidence)
    console.print(f"{verdict} after {solution.steps} ACT steps; halting confidence per step: {halting}\n")


def _animate(path: Path, result) -> None:
    from hrm_mlx import animate

    if not result.solution.trace:
        raise HrmMlxError(f"--animate: no steps to draw for {result.source} (an ARC model without the unaugmented "
                          "task)")
    animate.write(path, animate.frames(result.task, result.solution.puzzle, result.solution.trace),
                  title=f"hrm-mlx solve {result.source}")
    err_console.print(f"hrm-mlx: {len(result.solution.trace)} steps of {result.source} drawn in {path}",
                      highlight=False)


def solve(
    puzzles: list[Path] = typer.Argument(..., help="Puzzle files or folders (JSON, JSONL, CSV or text grids)."),
    model: str = typer.Option(None, "--model", help="Model folder or Hugging Face repo id (default: the model "
                              "shipped for the puzzles' task)."),
    task: str = typer.Option(None, "--task", help=f"Task of the puzzles ({', '.join(tasks.names())}) when "
                             "detection from the content and extension is not wanted."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Most ACT steps per puzzle (default: 4x the "
                                  "steps the model was trained with; for a model that runs at any size, also "
                                  "scaled by the grid's area over its training canvas). More steps = more "
                                  "thinking."),
    stop: StopRule = typer.Option(StopRule.stable, "--stop", help="When a puzzle stops thinking: 'stable' = its "
                                  "answer has not changed for two steps and its halt head says halt; 'halt' = the "
                                  "halt head's first halt; 'never' = after --max-steps (the official evaluation). "
                                  "ARC's voting always runs the trained steps."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Puzzles per model batch."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per puzzle instead of grids."),
    out: Path = typer.Option(None, "--out", help="Also write the results as JSON to this file."),
    num_aug: int = typer.Option(None, "--num-aug", min=1, help="How many versions of each puzzle the model "
                                "solves; their answers vote. Sudoku: the puzzle and symmetric copies (relabelled "
                                "digits, shuffled rows and columns; default 16); mazes: its rotations and "
                                "reflections (at most 8; default 1); ARC: versions of the task the model learned "
                                "(default 8). Sudoku and mazes run the copies only when the puzzle's own answer "
                                "fails the check (an answer the check accepts is right). 1 = the puzzle alone."),
    solutions_file: Path = typer.Option(None, "--solutions", help="ARC: a Kaggle solutions file; reports the "
                                        "Kaggle score and the strict all-tests score."),
    submission: Path = typer.Option(None, "--submission", help="ARC: write a Kaggle submission.json (top-2 "
                                    "attempts per test input) to this path."),
    trace: bool = typer.Option(False, "--trace", help="Keep the answer after every ACT step and show it: with --json "
                               "per step the grid, the changed cells, each cell's confidence, sigmoid(q_halt) and "
                               "the checker's verdict (ARC: the first test input, unaugmented)."),
    animate: Path = typer.Option(None, "--animate", help="Write an animation of the first puzzle's steps: FILE.gif "
                                 "(needs Pillow: the 'animate' extra) or FILE.html (frames and a slider, offline)."),
    watch: bool = typer.Option(False, "--watch", help="Redraw the first puzzle's answer in place as the steps run, "
                               "changed cells highlighted."),
) -> None:
    """Solve puzzles and check every answer (Sudoku rules, shortest maze path, known ARC output)."""
    from hrm_mlx import atomic, runtime

    runtime.configure(compile=False)  # a first answer without a compiler run (see hrm_mlx.runtime)
    from hrm_mlx.solve import solve_files

    if animate is not None and animate.suffix.lower() not in (".gif", ".html"):
        raise HrmMlxError(f"--animate {animate}: write a .gif or an .html file")
    view = _View(as_json, watch, batch_size)
    try:
        summaries = solve_files(puzzles, model=model, task=task, answers=solutions_file, submission=submission,
                                max_steps=max_steps, stop=stop.value, batch_size=batch_size, num_aug=num_aug,
                                trace=trace, follow_first=watch or animate is not None, callback=view)
    finally:
        view.stop()
    if not summaries and not view.results:
        if view.failures:
            raise typer.Exit(2)
        raise HrmMlxError("no puzzles to solve")
    if animate is not None and view.results:
        _animate(animate, view.results[0])
    if out:
        atomic.write_json(out, view.records, indent=1)
    if view.failures:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command()(solve)
