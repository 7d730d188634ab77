"""``hrm-mlx solve``: solve puzzle files (hrm_mlx.solve.solve_files) and show what it reports."""

from __future__ import annotations

import signal
import threading
from enum import Enum
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from hrm_mlx import tasks
from hrm_mlx.cli import output, render
from hrm_mlx.cli.render import console, err_console
from hrm_mlx.errors import HrmMlxError


class StopRule(str, Enum):
    """hrm_mlx.solve.STOP_RULES, named here so that --help needs no mlx import."""

    stable = "stable"
    halt = "halt"
    never = "never"


SHOW_AT_MOST = 4  # puzzles drawn as grids; larger runs print the summary only
LIST_AT_MOST = 20  # puzzles named in a summary's list of failures


class _View:
    """Renders what the pipeline reports: errors on stderr, each answer as JSON or drawn, a progress bar, the
    first puzzle thinking (--watch), each task's summary and scores, and what failed."""

    def __init__(self, records: output.Records, as_json: bool, watch: bool, batch_size: int):
        from rich.progress import Progress

        self.records, self.as_json, self.watch, self.batch_size = records, as_json, watch, batch_size
        self.results, self.not_solved, self.errors = [], [], []
        self.kept_results = True  # the Results are kept (for --animate) until a run shows to be large
        self.progress = Progress(console=err_console, transient=True)
        self.bar = self.live = None
        self.rows = 0  # model rows the progress bar counts
        self.draw = True
        self.large = False

    def on_result(self, result) -> None:
        self.records.emit(result.to_json())
        if result.solution is None:
            self.errors.append(result.source)
            err_console.print(f"hrm-mlx: error: {result.error}", markup=False, soft_wrap=True)
            return
        if not result.solution.solved:
            self.not_solved.append(result.source)
        if self.kept_results or not self.results:
            self.results.append(result)
        if self.draw and not self.as_json:
            self._stop_live()
            console.print(result.source, style="bold", markup=False, soft_wrap=True)
            if result.note:
                console.print(f"note: {result.note}", style="yellow", markup=False, soft_wrap=True)
            _draw(tasks.get(result.task), result.solution)

    def on_task_start(self, task, puzzles: list, rows: int, more: bool) -> None:
        self.large = self.large or more or len(puzzles) > SHOW_AT_MOST
        self.draw = not self.large
        self.kept_results = not self.large
        following = self.watch and not self.results
        if (rows > self.batch_size or more) and not following:  # a bar where there is more than a batch to wait for
            if self.bar is None:
                self.progress.start()
                self.bar = self.progress.add_task(f"solving {task.name} puzzles", total=0)
            self.rows += rows
            self.progress.update(self.bar, total=self.rows)
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
        if summary.scores and not self.as_json:
            console.print("; ".join(f"{name} {value:.3f}" + (f" ({what})" if what else "")
                                    for name, value, what in summary.scores), markup=False)
        if self.as_json:
            return
        table = Table(title=f"{summary.task}: summary", show_header=False, title_justify="left")
        table.add_row("solved", f"{summary.solved} / {summary.count}")
        table.add_row("exact accuracy", f"{summary.solved / summary.count:.3f}")
        table.add_row("mean ACT steps", f"{summary.mean_steps:.2f}")
        table.add_row("puzzles/s", f"{summary.count / summary.seconds:.2f}")
        console.print(table)

    def failures(self) -> None:
        """After a large run, which puzzles were not solved and which could not be read or solved."""
        if self.as_json or not self.large:
            return
        for what, sources in (("not solved", self.not_solved), ("could not be solved", self.errors)):
            if sources:
                shown = ", ".join(sources[:LIST_AT_MOST])
                more = f" and {len(sources) - LIST_AT_MOST} more (--json lists every puzzle)" \
                    if len(sources) > LIST_AT_MOST else ""
                console.print(f"{what}: {shown}{more}", markup=False, soft_wrap=True)

    def exit_code(self) -> int:
        if self.errors:
            return output.BAD_INPUT
        return output.FAILED if self.not_solved else output.OK

    def summary(self, summaries: list) -> dict:
        """The last JSON record: the counts, the exit code and each task's summary."""
        return {"summary": {"answered": sum(s.count for s in summaries), "solved": sum(s.solved for s in summaries),
                            "not_solved": len(self.not_solved), "errors": len(self.errors),
                            "exit_code": self.exit_code(), "tasks": [s.to_json() for s in summaries]}}

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
                          markup=False, soft_wrap=True)
    verdict = "[green]solved[/green]" if solution.solved else f"[red]not solved[/red] ({escape(solution.reason)})"
    halting = " ".join(f"{c:.2f}" for c in solution.halt_confidence)
    console.print(f"{verdict} after {solution.steps} ACT steps; halting confidence per step: {halting}\n",
                  soft_wrap=True)


def _animate(path: Path, result) -> None:
    from hrm_mlx import animate

    if not result.solution.trace:
        raise HrmMlxError(f"--animate: no steps to draw for {result.source} (an ARC model without the unaugmented "
                          "task)")
    animate.write(path, animate.frames(result.task, result.solution.puzzle, result.solution.trace),
                  title=f"hrm-mlx solve {result.source}")
    err_console.print(f"hrm-mlx: {len(result.solution.trace)} steps of {result.source} drawn in {path}",
                      markup=False, soft_wrap=True)


class _TerminateAsInterrupt:
    """SIGTERM (a time limit, `timeout`) ends the run as Ctrl-C does: what was solved is kept."""

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


def solve(
    puzzles: list[Path] = typer.Argument(..., metavar="PUZZLES...", help="Puzzle files or folders (JSON, JSONL, "
                                         "CSV or text grids); - reads standard input."),
    model: str = typer.Option(None, "--model", metavar="MODEL", help="Model folder, training run folder (its "
                              "model), official checkpoint or Hugging Face repo id (default: the model shipped for "
                              "the puzzles' task)."),
    task: str = typer.Option(None, "--task", metavar="TASK", help=f"Task of the puzzles ({', '.join(tasks.names())}) "
                             "when detection from the content and extension is not wanted."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, metavar="N", show_default="4x the trained steps",
                                  help="Most ACT steps per puzzle; for a model that runs at any size also scaled by "
                                  "the grid's area over its training canvas. More steps = more thinking."),
    stop: StopRule = typer.Option(StopRule.stable, "--stop", metavar="stable|halt|never",
                                  help="When a puzzle stops thinking: 'stable' = its answer has not changed for two "
                                  "steps and its halt head says halt; 'halt' = the halt head's first halt; 'never' = "
                                  "after --max-steps (the official evaluation). ARC's voting always runs the "
                                  "trained steps."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, metavar="N", help="Puzzles per model batch."),
    limit: int = typer.Option(None, "--limit", min=1, metavar="N", help="Solve only the first N puzzles."),
    as_json: bool = typer.Option(False, "--json", help=output.STREAM_JSON_HELP),
    out: Path = typer.Option(None, "--out", metavar="FILE", help=output.STREAM_OUT_HELP),
    num_aug: int = typer.Option(None, "--num-aug", min=1, metavar="N", help="How many versions of each puzzle the "
                                "model solves; their answers vote. Sudoku: the puzzle and symmetric copies "
                                "(relabelled digits, shuffled rows and columns; default 16); mazes: its rotations "
                                "and reflections (at most 8; default 1); ARC: versions of the task the model learned "
                                "(default 8). Sudoku and mazes run the copies only when the puzzle's own answer "
                                "fails the check (an answer the check accepts is right). 1 = the puzzle alone."),
    solutions_file: Path = typer.Option(None, "--solutions", metavar="FILE", help="ARC: a Kaggle solutions file; "
                                        "reports the Kaggle score and the strict all-tests score."),
    submission: Path = typer.Option(None, "--submission", metavar="FILE", help="ARC: write a Kaggle submission.json "
                                    "(top-2 attempts per test input) to this path."),
    trace: bool = typer.Option(False, "--trace", help="Keep the answer after every ACT step and show it: with --json "
                               "per step the grid, the changed cells, each cell's confidence, sigmoid(q_halt) and "
                               "the checker's verdict (ARC: the first test input, unaugmented)."),
    animate: Path = typer.Option(None, "--animate", metavar="FILE", help="Write an animation of the first puzzle's "
                                 "steps: FILE.gif (needs Pillow: the 'animate' extra) or FILE.html (frames and a "
                                 "slider, offline)."),
    watch: bool = typer.Option(False, "--watch", help="Redraw the first puzzle's answer in place as the steps run, "
                               "changed cells highlighted."),
) -> None:
    """Solve puzzles and check every answer (Sudoku rules, shortest maze path, known ARC output). Answers stream as
    they are solved. Exit code 0 when every answer passed its check, 1 when some did not, 2 when an input could not
    be read or solved, 130 when interrupted (the answers so far are kept)."""
    from hrm_mlx import runtime

    runtime.configure(compile=False)  # a first answer without a compiler run (see hrm_mlx.runtime)
    from hrm_mlx.solve import solve_files

    if animate is not None and animate.suffix.lower() not in (".gif", ".html"):
        raise HrmMlxError(f"--animate {animate}: write a .gif or an .html file")
    for option, path in (("--submission", submission), ("--animate", animate)):
        output.check_folder(option, path)
    with output.Records(as_json, out) as records, _TerminateAsInterrupt():
        view = _View(records, as_json, watch, batch_size)
        try:
            summaries = solve_files(puzzles, model=model, task=task, answers=solutions_file, submission=submission,
                                    max_steps=max_steps, stop=stop.value, batch_size=batch_size, num_aug=num_aug,
                                    trace=trace, follow_first=watch or animate is not None, limit=limit,
                                    callback=view)
        except KeyboardInterrupt:
            view.stop()
            err_console.print(f"hrm-mlx: interrupted; the answers so far are kept{f' in {out}' if out else ''}",
                              markup=False, soft_wrap=True)
            raise typer.Exit(output.INTERRUPTED) from None
        finally:
            view.stop()
        if not summaries and not view.errors:
            raise HrmMlxError("no puzzles to solve")
        records.emit(view.summary(summaries))
    view.failures()
    if animate is not None and view.results:
        _animate(animate, view.results[0])
    raise typer.Exit(view.exit_code())


def register(app: typer.Typer) -> None:
    app.command(epilog=output.EXIT_CODES)(solve)
