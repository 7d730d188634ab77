"""``hrm-mlx solve``: read puzzle files, solve them with a model, check and show the answers."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table

from hrm_mlx.cli import render
from hrm_mlx.cli.render import console, err_console
from hrm_mlx.errors import HrmMlxError

class StopRule(str, Enum):
    """hrm_mlx.solve.STOP_RULES, named here so that --help needs no mlx import."""

    stable = "stable"
    halt = "halt"
    never = "never"


PUZZLE_SUFFIXES = {".json", ".jsonl", ".txt", ".csv", ".sudoku", ".maze", ""}
SHOW_AT_MOST = 4  # puzzles drawn as grids; larger runs print the summary only


def _files(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PUZZLE_SUFFIXES)
        else:
            files.append(path)
    return files


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HrmMlxError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HrmMlxError(f"{path}: cannot read ({error.__class__.__name__})") from None


def _read_puzzles(path: Path, task_name: str | None) -> tuple[str, list]:
    """(task name, puzzles) of one file; HrmMlxError names the file on any problem."""
    from hrm_mlx import tasks

    text = _read_text(path)
    task = tasks.get(task_name) if task_name else tasks.detect(text, str(path))  # its errors name the file
    try:
        return task.name, task.parse(text)
    except HrmMlxError as error:
        raise HrmMlxError(f"{path}: {error}") from None


def _report(message: str) -> None:
    err_console.print(f"hrm-mlx: error: {message}", highlight=False, markup=False, soft_wrap=True)


def _draw(task: str, solution) -> None:
    if task == "sudoku":
        console.print(render.sudoku_grid(solution.puzzle.grid, solution.answer))
    elif task == "maze":
        console.print(render.maze_grid(solution.answer))
    else:
        for n, ((test_input, _), tries) in enumerate(zip(solution.puzzle.test, solution.attempts)):
            console.print(f"test input {n + 1}, then attempts 1 and 2:")
            for grid in (test_input, *tries):
                console.print(render.arc_grid(grid))
    if solution.trace:
        from hrm_mlx.animate import caption

        for step in solution.trace:
            console.print(f"  {caption(step, len(solution.trace))}   {len(step.changed)} cells changed",
                          highlight=False)
    verdict = "[green]solved[/green]" if solution.solved else f"[red]not solved[/red] ({solution.reason})"
    halting = " ".join(f"{c:.2f}" for c in solution.halt_confidence)
    console.print(f"{verdict} after {solution.steps} ACT steps; halting confidence per step: {halting}\n")


def _record(source: str, task: str, solution) -> dict:
    from hrm_mlx import tasks

    record = {"source": source, "task": task, "solved": solution.solved, "reason": solution.reason,
              "steps": solution.steps, "halt_confidence": [round(c, 4) for c in solution.halt_confidence]}
    if solution.attempts is None:
        record["answer"] = tasks.get(task).to_text(solution.answer)
    else:
        record["attempts"] = [[grid.tolist() for grid in tries] for tries in solution.attempts]
    if solution.trace is not None:
        record["trace"] = [step.to_json() for step in solution.trace]
    return record


def solve(
    puzzles: list[Path] = typer.Argument(..., help="Puzzle files or folders (JSON, JSONL, CSV or text grids)."),
    model: str = typer.Option(None, "--model", help="Model folder or Hugging Face repo id (default: the model "
                              "shipped for the puzzles' task)."),
    task: str = typer.Option(None, "--task", help="Task of the puzzles (sudoku, maze, arc) when detection from "
                             "the content and extension is not wanted."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Most ACT steps per puzzle (default: 4x the "
                                  "steps the model was trained with; for a model that runs at any size, also "
                                  "scaled by the grid's area over its training canvas). More steps = more "
                                  "thinking."),
    stop: StopRule = typer.Option(StopRule.stable, "--stop", help="When a puzzle stops thinking: 'stable' = its answer has "
                             "not changed for two steps and its halt head says halt; 'halt' = the halt head's "
                             "first halt; 'never' = after --max-steps (the official evaluation)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Puzzles per model batch."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per puzzle instead of grids."),
    out: Path = typer.Option(None, "--out", help="Also write the results as JSON to this file."),
    num_aug: int = typer.Option(8, "--num-aug", min=1, help="ARC: how many trained versions (original and "
                                "augmented) of a task vote on each test output."),
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
    from hrm_mlx import atomic, io, solve as solver

    if animate is not None and animate.suffix.lower() not in (".gif", ".html"):
        raise HrmMlxError(f"--animate {animate}: write a .gif or an .html file")

    by_task: dict[str, list] = {}
    failures = 0
    for path in _files(puzzles):
        try:
            name, items = _read_puzzles(path, task)
        except HrmMlxError as error:
            _report(str(error))
            failures += 1
            continue
        for index, puzzle in enumerate(items):
            label = f"{path}#{index + 1}" if len(items) > 1 else str(path)
            by_task.setdefault(name, []).append((label, puzzle))
    if not by_task:
        if failures:
            raise typer.Exit(2)
        raise HrmMlxError("no puzzles to solve")

    records = []
    for name, labelled in by_task.items():
        source = model or str(solver.shipped_model(name))
        loaded_model, config = io.load(source)
        model_task, encoding = solver.task_of(config, loaded_model)
        if model_task.name != name:
            raise HrmMlxError(f"the model solves {model_task.name}, not {name} puzzles")
        if name == "arc":
            solutions_text = _read_text(solutions_file) if solutions_file else None
            if solutions_text is not None:
                labelled = _with_solutions(labelled, solutions_text)
            versions = solver.arc_versions(io.load_identifiers(source))
        good = []
        for label, puzzle in labelled:
            try:
                model_task.validate(puzzle, **encoding)
                if name == "arc" and puzzle.id not in versions:
                    raise HrmMlxError(f"task {puzzle.id!r} was not in the model's training data: an ARC model "
                                      "solves only tasks whose puzzle embedding it learned")
                good.append((label, puzzle))
            except HrmMlxError as error:
                _report(f"{label}: {error}")
                failures += 1
        if not good:
            continue
        start = time.perf_counter()
        rows = sum(len(p.test) * min(num_aug, len(versions[p.id])) for _, p in good) if name == "arc" else len(good)
        first = not records and watch  # --watch and --animate follow the first puzzle of the run
        with Progress(console=err_console, transient=True, disable=rows <= batch_size or first) as progress, \
                _watching(name, good[0][1], first) as on_step:
            bar = progress.add_task(f"solving {len(good)} {name} puzzles", total=rows)
            advance = lambda n: progress.advance(bar, n)  # noqa: E731
            traced = trace or (animate is not None and not records)
            if name == "arc":
                solutions = solver.solve_arc(loaded_model, versions, [p for _, p in good], num_aug=num_aug,
                                             max_steps=max_steps, batch_size=batch_size, on_batch=advance,
                                             trace=traced, on_step=on_step)
                _kaggle_files(solutions, submission, solutions_text)
            else:
                solutions = solver.solve(loaded_model, config, [p for _, p in good], max_steps=max_steps,
                                         stop=stop.value, batch_size=batch_size, on_batch=advance, trace=traced,
                                         on_step=on_step)
        if animate is not None and not records:
            _animate(animate, name, good[0], solutions[0])
        elapsed = time.perf_counter() - start
        for (label, _), solution in zip(good, solutions):
            records.append(_record(label, name, solution))
            if as_json:
                print(json.dumps(records[-1]))
            elif len(good) <= SHOW_AT_MOST:
                console.print(f"[bold]{label}[/bold]")
                _draw(name, solution)
        if not as_json:
            _summary(name, solutions, elapsed)
    if out:
        atomic.write_json(out, records, indent=1)
    if failures:
        raise typer.Exit(2)


@contextmanager
def _watching(task: str, puzzle, active: bool):
    """A live view of one puzzle's answer (the first of the batch), redrawn at every step; yields the solver's
    on_step callback (None when not watching)."""
    if not active:
        yield None
        return
    from rich.live import Live

    with Live(console=console, auto_refresh=False, transient=True) as live:  # the usual drawing follows
        def on_step(index: int, step) -> None:
            if index == 0:
                live.update(render.thinking(task, puzzle, step), refresh=True)

        yield on_step


def _animate(path: Path, task: str, labelled, solution) -> None:
    from hrm_mlx import animate

    label, puzzle = labelled
    if not solution.trace:
        raise HrmMlxError(f"--animate: no steps to draw for {label} (an ARC model without the unaugmented task)")
    animate.write(path, animate.frames(task, puzzle, solution.trace), title=f"hrm-mlx solve {label}")
    err_console.print(f"hrm-mlx: {len(solution.trace)} steps of {label} drawn in {path}", highlight=False)


def _with_solutions(labelled: list, solutions_text: str) -> list:
    from hrm_mlx.tasks import arc

    puzzles = arc.attach_solutions([p for _, p in labelled], solutions_text)
    return [(label, puzzle) for (label, _), puzzle in zip(labelled, puzzles)]


def _kaggle_files(solutions: list, submission: Path | None, solutions_text: str | None) -> None:
    from hrm_mlx.tasks import arc

    entries = arc.make_submission({s.puzzle.id: s.attempts for s in solutions}, [s.puzzle for s in solutions])
    if submission:
        arc.write_submission(submission, entries)
    if solutions_text is not None:
        score = arc.score_submission(entries, solutions_text)
        console.print(f"ARC Kaggle score {score.kaggle:.3f} (per task, fraction of test inputs solved by either "
                      f"attempt); strict all-tests score {score.strict:.3f}")


def _summary(task: str, solutions: list, seconds: float) -> None:
    solved = sum(s.solved for s in solutions)
    table = Table(title=f"{task}: summary", show_header=False, title_justify="left")
    table.add_row("solved", f"{solved} / {len(solutions)}")
    table.add_row("exact accuracy", f"{solved / len(solutions):.3f}")
    table.add_row("mean ACT steps", f"{sum(s.steps for s in solutions) / len(solutions):.2f}")
    table.add_row("puzzles/s", f"{len(solutions) / seconds:.2f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(solve)
