"""``hrm-mlx eval``: exact accuracy of a model on a generated or official test set."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from hrm_mlx import tasks
from hrm_mlx.cli import output

MODEL_HELP = "Model folder (e.g. RUN_DIR/model), official checkpoint or Hugging Face repo id."
SOURCE_HELP = ("Test data: 'generate' (seeded generator), 'hub' (the official sapientinc test CSV), or a folder "
               "(train.csv/test.csv, or official layout). Default: the held-out split of the model's own training "
               "data when its config records it, else 'hub'.")


def evaluate(
    model: str = typer.Option(..., "--model", metavar="MODEL", help=MODEL_HELP),
    task: Optional[str] = typer.Option(None, "--task", metavar="TASK",
                                       help=f"{', '.join(tasks.names())} (default: the model's task)."),
    source: Optional[str] = typer.Option(None, "--source", metavar="SOURCE", help=SOURCE_HELP),
    n: Optional[int] = typer.Option(None, "--n", min=1, metavar="N", help="Test puzzles: generated count, or a "
                                    "seeded subsample of an official test set."),
    overrides: List[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Data setting (e.g. --set size=15 "
                                        "--set min_path=20 --set givens=[24,28]); repeatable."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, metavar="N", help="Puzzles per batch."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, metavar="N",
                                            show_default="the model's halt_max_steps", help="ACT steps per puzzle."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="FOLDER", help="Cache of built data sets."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as one JSON object on stdout (progress "
                                 "goes to stderr)."),
    out: Optional[Path] = typer.Option(None, "--out", metavar="FILE", help=output.OUT_HELP),
) -> None:
    """Exact accuracy of a model on a generated or official test set, with token accuracy and ACT steps. Exit code
    0 when every puzzle was solved, 1 when some were not (the task's checker, else the exact labels)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from hrm_mlx import runtime
    from hrm_mlx.cli.render import console, err_console, key_value_table

    runtime.configure()
    from hrm_mlx import train as training
    from hrm_mlx.config import parse_assignment
    from hrm_mlx.train.callbacks import EvalCallback

    settings = {}
    for item in overrides:
        path, value = parse_assignment(item)
        settings[".".join(path)] = value
    if source is not None:
        settings["source"] = source

    output.check_folder("--out", out)
    screen = err_console if as_json else console
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=screen)

    class Bars(EvalCallback):
        def __init__(self):
            self.bars = {}

        def on_data(self, done: int, total: int, what: str) -> None:
            if "data" not in self.bars:
                self.bars["data"] = progress.add_task("data", total=total)
            progress.update(self.bars["data"], total=total, completed=done, description=what[:40])

        def on_start(self, total: int, data) -> None:
            # Until the first batch is done: it compiles the step, and the first time on a machine MLX also
            # builds the step's CPU kernels (hrm_mlx.runtime).
            self.bars["eval"] = progress.add_task("evaluating (compiling the step; the first time here MLX also "
                                                  "builds its CPU kernels)", total=total)

        def on_batch(self, count: int) -> None:
            progress.update(self.bars["eval"], advance=count, description="evaluating")

    with progress:
        result = training.evaluate_model(model, task, settings, n=n, batch_size=batch_size, max_steps=max_steps,
                                         cache_dir=data_dir, callback=Bars())
    solved = result.get("solved")
    rows = {
        "task": result["task"],
        "puzzles": f"{result['count']:,}",
        "exact accuracy": f"{result['exact_accuracy']:.4f}",
        "token accuracy": f"{result['accuracy']:.4f}",
        "checker accepts": "-" if solved is None else f"{solved:.4f}",
        "mean ACT steps (halting head)": f"{result['act_steps']:.2f}",
        "data": result["data"],
    }
    with output.Records(as_json, out) as records:
        records.emit(result)
    if not as_json:
        console.print(key_value_table(f"eval {model}", rows))
    passed = result["exact_accuracy"] if solved is None else solved
    raise typer.Exit(output.OK if passed == 1 else output.FAILED)


def register(app: typer.Typer) -> None:
    app.command(name="eval", epilog=output.EXIT_CODES)(evaluate)
