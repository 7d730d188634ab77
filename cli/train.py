"""``hrm-mlx train``: train a model from a recipe (progress bar, periodic evaluation, checkpoints, resume)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from hrm_mlx import tasks
from hrm_mlx.cli import output
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.train.callbacks import TrainCallback

TASK_HELP = f"Task to train ({', '.join(tasks.names())}): uses the task's small CPU recipe unless --recipe is given."
RECIPE_HELP = "Recipe name (see --list-recipes) or a recipe JSON file."
SET_HELP = ("Override a config value, KEY=VALUE (repeatable), e.g. --set train.lr=3e-4 --set model.hidden_size=64 "
            "--set train.data.n_train=5000. Values are JSON (numbers, true, null, [30,40]) or plain strings.")


def _fmt(value, spec=".3f"):
    return "-" if value is None else format(value, spec)


def _metrics(record: dict) -> str:
    return (f"loss {_fmt(record['loss'], '.4f')}  acc {_fmt(record['accuracy'])}  exact "
            f"{_fmt(record['exact_accuracy'])}  {_fmt(record['steps_per_s'], '.2f')} steps/s "
            f"({_fmt(record['examples_per_s'], '.0f')} ex/s)")


class _Renderer(TrainCallback):
    """Renders a run: on a terminal a data bar while building, then a training bar; elsewhere (a log file, a pipe)
    a plain line per log record, never cut. A line per evaluation and checkpoint; with --json, every report as a
    JSON line on stdout instead (the run's metrics.jsonl holds the same records)."""

    def __init__(self, records: output.Records | None):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        from hrm_mlx.cli.render import console, err_console

        self.records = records
        self.console = err_console if records is not None else console
        self.progress = None
        if self.console.is_terminal:
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                     console=self.console, transient=False)
            self.progress.start()
        self.data_task = None
        self.train_task = None
        self.total = 0

    def emit(self, record: dict) -> None:
        if self.records is not None:
            self.records.emit(record)

    def on_data(self, done: int, total: int, what: str) -> None:
        if self.progress is None:
            return
        if self.data_task is None:
            self.data_task = self.progress.add_task("data", total=total, info="")
        self.progress.update(self.data_task, total=total, completed=done, description=what[:40])

    def on_start(self, start) -> None:
        self.total = start.total_steps
        if self.data_task is not None:
            self.progress.remove_task(self.data_task)
            self.data_task = None
        mode = "compiled" if start.compiled else "eager"
        self.emit({"event": "start", "run_dir": str(start.run_dir), "step": start.step,
                   "total_steps": start.total_steps, "params": start.params, "data": str(start.data),
                   "resumed": start.resumed})
        self.console.print(
            f"[bold]run[/] {escape(str(start.run_dir))}  {start.params:,} parameters, {start.train_examples:,} "
            f"training / {start.test_examples:,} test examples, {start.world_size} rank(s), {mode}"
            + (f"  (resumed at step {start.step})" if start.resumed else ""), soft_wrap=True)
        self.console.print(f"[dim]data {escape(str(start.data))}; eval every {start.eval_every} steps, checkpoint "
                           f"every {start.checkpoint_every}[/]", soft_wrap=True)
        # Until the first log line: the first step traces and compiles, and on a machine where MLX has not built
        # this step's CPU kernels yet it builds them (once; hrm_mlx.runtime), which takes up to a minute.
        first = "compiling the step (the first time here MLX also builds its CPU kernels, up to a minute)"
        if self.progress is not None:
            self.train_task = self.progress.add_task("train", total=start.total_steps, completed=start.step,
                                                     info=first if start.compiled else "")
        elif start.compiled:
            self.console.print(f"[dim]{first}[/]", soft_wrap=True)

    def on_log(self, record: dict) -> None:
        self.emit({"event": "log", **record})
        if self.progress is not None:
            self.progress.update(self.train_task, completed=record["step"], info=_metrics(record))
        else:
            self.console.print(f"step {record['step']}/{self.total}  {_metrics(record)}", soft_wrap=True)

    def on_eval(self, step: int, metrics: dict) -> None:
        self.emit({"event": "eval", "step": step, **metrics})
        self.console.print(f"[cyan]eval[/] step {step}: exact accuracy {metrics['exact_accuracy']:.3f}, "
                           f"token accuracy {metrics['accuracy']:.3f}, mean ACT steps {metrics['act_steps']:.2f} "
                           f"({metrics['count']} puzzles)", soft_wrap=True)

    def on_checkpoint(self, step: int, path: Path) -> None:
        self.emit({"event": "checkpoint", "step": step, "path": str(path)})
        self.console.print(f"[dim]checkpoint {escape(str(path))}[/]", soft_wrap=True)

    def on_done(self, summary) -> None:
        self.stop()

    def stop(self):
        if self.progress is not None:
            self.progress.stop()


def _list_settings(task: str | None) -> None:
    from rich.table import Table

    from hrm_mlx.cli.render import console
    from hrm_mlx.train import TrainConfig

    rows = [row for row in TrainConfig.describe("train.") if row[0] != "train.data"]
    shown = [tasks.get(task)] if task else tasks.all_tasks()
    for found in shown:
        prefix = "train.data." if len(shown) == 1 else f"train.data. ({found.name})  "
        rows += [(prefix + key, default, text) for key, default, text in found.DataConfig.describe()]
    table = Table("setting", "default", "meaning", title="hrm-mlx train --set KEY=VALUE", title_justify="left")
    for row in rows:
        table.add_row(*map(escape, row))
    console.print(table)
    console.print("model.*: the family's config fields (hrm_mlx.models.hrm/trm ModelArgs), model.mixer_args.*: the "
                  "token mixer's options (hrm_mlx.models.mixers)")


def train(
    task: Optional[str] = typer.Option(None, "--task", metavar="TASK", help=TASK_HELP),
    recipe: Optional[str] = typer.Option(None, "--recipe", metavar="RECIPE", help=RECIPE_HELP),
    overrides: List[str] = typer.Option([], "--set", metavar="KEY=VALUE", help=SET_HELP),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, metavar="N", help="Total optimizer steps "
                                        "(train.steps)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, metavar="N",
                                             help="Global batch size (train.global_batch_size)."),
    subsample: Optional[int] = typer.Option(None, "--subsample", min=1, metavar="N", help="Keep this many training "
                                            "puzzles of an official data set (train.data.subsample; seeded)."),
    out: Optional[Path] = typer.Option(None, "--out", metavar="RUN_DIR", show_default="runs/<recipe>-<time>",
                                       help="Run folder (its metrics.jsonl holds every --json record)."),
    resume: Optional[Path] = typer.Option(None, "--resume", metavar="RUN_DIR", help="Continue the run in this "
                                          "folder."),
    eager: bool = typer.Option(False, "--eager", help="Do not mx.compile the training step (train.compile=false)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", min=0.1, metavar="MINUTES", help="Minutes this "
                                               "invocation may take, set-up included; it stops in time to evaluate, "
                                               "checkpoint and save the model as at the end (continue later with "
                                               "--resume)."),
    init_from: Optional[str] = typer.Option(None, "--init-from", metavar="MODEL", help="Start from the weights of "
                                            "this model (folder, checkpoint or Hub repo; train.init_from) instead "
                                            "of a random init, e.g. a model trained on smaller grids. Shapes must "
                                            "match."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="FOLDER", show_default="$HRM_MLX_DATA or "
                                            "~/.cache/hrm-mlx/data", help="Where built data sets are cached."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's reports as JSON lines on stdout (start, log, "
                                 "eval, checkpoint, and a last summary record); progress goes to stderr."),
    list_recipes: bool = typer.Option(False, "--list-recipes", help="List the recipes and exit."),
    list_settings: bool = typer.Option(False, "--list-settings", help="List every train.* and train.data.* "
                                       "setting --set takes, with its default and meaning (the data settings of "
                                       "--task, or of the --recipe's task; default: every task's), and exit."),
) -> None:
    """Train a model from a recipe: official semantics, cached data, checkpoints, exact --resume, data parallel.
    Ctrl-C saves a checkpoint, the model and the curves, and exits with code 130."""
    from hrm_mlx import recipes, runtime
    from hrm_mlx.cli.render import console, err_console

    runtime.configure()
    from hrm_mlx import train as training

    if list_recipes:
        for name in recipes.names():
            console.print(f"[bold]{name}[/]\n  {escape(recipes.load(name).get('description', ''))}\n")
        return
    if list_settings:
        _list_settings(task or (training.load_recipe(recipe)["task"] if recipe else None))
        return
    pairs = list(overrides)
    if steps is not None:
        pairs.append(f"train.steps={steps}")
    if batch_size is not None:
        pairs.append(f"train.global_batch_size={batch_size}")
    if subsample is not None:
        pairs.append(f"train.data.subsample={subsample}")
    if eager:
        pairs.append("train.compile=false")
    if init_from is not None:
        local = Path(init_from).expanduser()
        pairs.append(f"train.init_from={local.resolve() if local.exists() else init_from}")
    if task is not None and recipe is None and not tasks.get(task).default_recipe:
        raise HrmMlxError(f"the task {task} has no default recipe; give --recipe")

    config = None
    if recipe is None and task is None:
        if resume is None:
            raise HrmMlxError(f"say what to train: --task {'|'.join(tasks.names())} or --recipe NAME (or --resume "
                              "RUN_DIR)")
        if pairs:
            raise HrmMlxError("--resume continues a run with its own settings: give no --set, --steps, --batch-size, "
                              "--subsample, --eager or --init-from without its --recipe/--task")
    else:
        loaded = training.load_recipe(recipe or tasks.get(task).default_recipe)
        if task is not None and loaded["task"] != tasks.get(task).name:
            raise HrmMlxError(f"recipe {recipe!r} trains {loaded['task']}, not {task}")
        config = training.resolve_config(loaded, pairs)
    if resume is not None:
        run_dir = resume
        if out is not None and Path(out) != Path(resume):
            raise HrmMlxError("give either --out or --resume, not both")
    else:
        run_dir = out or Path("runs") / f"{config.recipe or config.task}-{time.strftime('%Y%m%d-%H%M%S')}"

    import mlx.core as mx

    rank0 = mx.distributed.init().rank() == 0
    with output.Records(as_json and rank0, None) as records:
        renderer = _Renderer(records if as_json else None) if rank0 else None
        try:
            summary = training.train(config, run_dir, resume=resume is not None, callback=renderer,
                                     cache_dir=data_dir, time_limit=60 * time_limit if time_limit else None)
        finally:
            if renderer:
                renderer.stop()
        if not rank0:
            return
        records.emit({"event": "done", "step": summary.step, "total_steps": summary.total_steps,
                      "interrupted": summary.interrupted, "time_limited": summary.time_limited,
                      "eval": summary.eval, "model": summary.model_dir and str(summary.model_dir),
                      "plot": summary.plot and str(summary.plot), "setup_s": round(summary.setup_s, 2),
                      "wall_s": round(summary.wall_s, 2)})
    _report_end(err_console if as_json else console, summary, time_limit)
    if summary.interrupted:
        sys.exit(output.INTERRUPTED)


def _report_end(screen, summary, time_limit: float | None) -> None:
    resume = f"hrm-mlx train --resume {summary.run_dir}"
    if summary.interrupted:
        screen.print(f"interrupted at step {summary.step}; checkpoint, model and curves saved. Continue with: "
                     f"{resume}", markup=False, soft_wrap=True)
    elif summary.time_limited and not summary.steps_now:
        screen.print(f"time limit: the set-up (data, model) took {summary.setup_s:.0f} s of the "
                     f"{60 * time_limit:.0f} s allowed, so no step was taken (the data are cached now). Continue "
                     f"with a longer --time-limit: {resume}", markup=False, soft_wrap=True)
        return
    elif summary.time_limited:
        screen.print(f"[bold yellow]time limit[/]: stopped at step {summary.step:,} of {summary.total_steps:,}, "
                     f"{summary.wall_s:.0f} s after the start ({summary.setup_s:.0f} s of set-up) of the "
                     f"{60 * time_limit:.0f} s allowed; continue with: {escape(resume)}", soft_wrap=True)
    result = summary.eval or {}
    if not summary.interrupted:
        screen.print(f"[bold green]done[/]: {summary.step:,} steps in {summary.elapsed_s / 60:.1f} min; "
                     f"eval exact accuracy {_fmt(result.get('exact_accuracy'))}", soft_wrap=True)
    if summary.model_dir is not None:
        screen.print(f"model  {summary.model_dir}   (hrm-mlx solve --model {summary.model_dir} ...)", markup=False,
                     soft_wrap=True)
        screen.print(f"metrics {summary.run_dir / 'metrics.jsonl'}   plot {summary.plot or '-'}", markup=False,
                     soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(epilog=output.EXIT_CODES)(train)
