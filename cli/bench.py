"""``hrm-mlx bench``: speed and memory of a model's eval ACT step (compiled and eager, and in each precision), of its
training step and of FLARE against dense attention, laid out as mlx-lm's benchmark: warm-up, per-trial lines,
averages, peak memory."""

import importlib.util
from pathlib import Path

import typer

from hrm_mlx.cli import output
from hrm_mlx.cli.render import console, err_console, key_value_table
from hrm_mlx.errors import HrmMlxError

MODEL_HELP = ("What to benchmark: a recipe (random weights; see `hrm-mlx train --list-recipes`), e.g. "
              "hrm-sudoku-extreme-1k; an alias of an official architecture: official-hrm-sudoku, official-trm-sudoku, "
              "official-hrm-maze, official-trm-maze, official-hrm-arc, official-trm-arc; a recipe JSON file; or a "
              "model folder, official checkpoint or Hugging Face repo id (its real weights and config).")
DTYPE_HELP = ("Activation dtype of the eval and training steps: float32, bfloat16 or float16. Official recipes "
              "compute in bfloat16 on a GPU; the default float32 is what a CPU runs fast.")
PRECISION_HELP = ("Also run the compiled eval ACT step in float32, bfloat16 and float16 on the same weights and "
                  "batch of --precision-batch puzzles (one warm-up and one timed step each): ms/step, speed against "
                  "float32 and the largest logit difference from float32. On a CPU, low-precision matmuls are ~40x "
                  "slower (about 2 minutes for the official 27M-parameter models at batch 4).")
RECIPES_HELP = ("Also time the compiled training step of the default recipes of `hrm-mlx train --task sudoku` and "
                "`--task maze` at their own batch size (or --batch): examples/s as a user trains them.")
FIRST_ANSWER_HELP = ("Also time `hrm-mlx solve` on the example Sudoku in new processes: cold (an empty MLX kernel "
                     "cache, as on a new machine) and warm, and `hrm-mlx --help` (--trials runs each, median).")
FLARE_HELP = ("Also time one FLARE layer against dense softmax attention for N = 1,024 ... --flare-max-tokens "
              "tokens (4x steps): time, peak memory, growth per 4x N and the targets. Takes minutes.")


def _print_numbers(screen, section: str):
    """mlx-lm's per-trial and averages lines: ``<section> <mode> trial 1:  ms_per_step=..., ...``."""

    def report(label: str, what: str, numbers: dict) -> None:
        values = ", ".join(f"{key}={value:.3f}" for key, value in numbers.items())
        screen.print(f"{section} {label} {what}:  {values}", soft_wrap=True)

    return report


def _memory(gigabytes: float) -> str:
    return f"{gigabytes:.2f} GB" if gigabytes >= 1 else f"{1000 * gigabytes:.1f} MB"


def _check_outputs(plot: Path | None, flare: bool) -> None:
    """Refuse output options that would fail only after minutes of measuring."""
    if plot and not flare:
        raise HrmMlxError("--plot draws the FLARE scaling: add --flare")
    if plot and importlib.util.find_spec("matplotlib") is None:
        raise HrmMlxError("--plot needs matplotlib: pip install matplotlib (or hrm-mlx's 'examples' extra)")
    output.check_folder("--plot", plot)


def _eval_section(screen, measure, target, batch: int, trials: int, dtype: str) -> dict:
    screen.print(f"eval ACT step: running warm-up (1 step per mode), then {trials} trial(s); batch {batch}, {dtype}")
    result = measure.bench_eval_step(target.config, batch, trials, dtype=dtype, parameters=target.parameters,
                                     report=_print_numbers(screen, "eval"))
    rows = {"model": f"{target.name} ({result['params']:,} parameters, {result['dtype']})", "source": target.source,
            "batch": batch, "GFLOP per ACT step": f"{result['gflop_per_step']:.1f}",
            "full solve": f"{result['halt_max_steps']} ACT steps per puzzle",
            "sgemm peak (GFLOP/s)": f"{result['sgemm_gflops']:.1f}"}
    for mode in measure.MODES:
        r = result[mode]
        rows[mode] = (f"{r['ms_per_step']:.1f} ms/step, {r['puzzles_per_s']:,.1f} puzzles/s, {r['gflops']:.1f} GFLOP/s "
                      f"({100 * r['share_of_peak']:.0f}% of peak), peak memory {_memory(r['peak_memory_gb'])}")
    rows["compiled speed-up"] = f"{result['compiled_speedup']:.2f}x"
    screen.print(key_value_table("eval ACT step (mean of the trials)", rows))
    return result


def _precision_section(screen, measure, target, batch: int) -> dict:
    screen.print(f"precision: compiled eval ACT step in {', '.join(measure.PRECISION_DTYPES)}; running warm-up "
                 "(1 step per dtype), then 1 trial")
    result = measure.bench_precision(target.config, batch, parameters=target.parameters,
                                     report=_print_numbers(screen, "precision"))
    rows = {}
    for dtype, r in result["dtypes"].items():
        rows[dtype] = (f"{r['ms_per_step']:.1f} ms/step, {r['puzzles_per_s']:,.1f} puzzles/s, "
                       f"{r['speed_vs_float32']:.2f}x float32's speed, max |logit diff| "
                       f"{r['max_logit_diff']:.2g}, peak memory {_memory(r['peak_memory_gb'])}")
    screen.print(key_value_table(f"precision (batch {batch}, logits after 2 ACT steps)", rows))
    return result


def _train_section(screen, measure, target, batch: int, trials: int, dtype: str) -> dict:
    screen.print(f"note: {target.train_note}")
    screen.print(f"training step: running warm-up (1 step per mode), then {trials} trial(s); batch {batch}, {dtype}")
    result = measure.bench_train_step({"model": target.config, "train": target.train}, batch, trials, dtype=dtype,
                                      report=_print_numbers(screen, "train"))
    rows = {mode: (f"{result[mode]['ms_per_step']:.1f} ms/step, {result[mode]['examples_per_s']:.1f} examples/s, "
                   f"peak memory {_memory(result[mode]['peak_memory_gb'])}") for mode in measure.MODES}
    rows["compiled speed-up"] = f"{result['compiled_speedup']:.2f}x"
    screen.print(key_value_table("training step (mean of the trials)", rows))
    return result


def _recipes_section(screen, measure, batch: int | None, trials: int) -> dict:
    screen.print(f"default recipes: compiled training step of `hrm-mlx train --task {'|'.join(measure.USER_TASKS)}`"
                 f"; running warm-up (1 step), then {trials} trial(s)")
    result = measure.bench_recipes(trials, batch_size=batch, report=_print_numbers(screen, "recipe"))
    rows = {name: (f"{r['examples_per_s']:.1f} examples/s ({r['ms_per_step']:.1f} ms per step of {r['batch']}), "
                   f"peak memory {_memory(r['peak_memory_gb'])}") for name, r in result.items()}
    screen.print(key_value_table("training as `hrm-mlx train --task` runs it (mean of the trials)", rows))
    return result


def _first_answer_section(screen, measure, trials: int) -> dict:
    screen.print(f"first answer: `hrm-mlx solve {measure.FIRST_PUZZLE}` in new processes, with an empty MLX kernel "
                 "cache (a fresh TMPDIR) then warm")
    result = measure.first_answer(runs=trials)
    screen.print(key_value_table("time to a first answer", {
        "cold (empty kernel cache)": f"{result['cold_s']:.2f} s", "warm": f"{result['warm_s']:.2f} s",
        "hrm-mlx --help": f"{result['help_s']:.2f} s"}))
    return result


def _flare_section(screen, max_tokens: int, plot: Path | None) -> dict:
    from hrm_mlx import flare_bench

    ns = flare_bench.token_counts(max_tokens)
    screen.print(f"FLARE layer vs dense softmax attention, N = {ns[0]:,} ... {ns[-1]:,} tokens, float32 "
                 f"(hrm_mlx.flare_bench defaults).\n{flare_bench.LEGEND}", soft_wrap=True)

    def print_row(row: dict) -> None:
        if row["n"] == ns[0]:  # the rows follow the FLARE rounds' progress lines
            screen.print(flare_bench.TABLE_HEADER, soft_wrap=True)
        screen.print(flare_bench.table_row(row), soft_wrap=True)

    result = flare_bench.scaling(ns, on_row=print_row, on_round=lambda r, n, f: screen.print(
        flare_bench.progress_line(r, 1, n, f)))
    for line in flare_bench.targets_lines(result["targets"]):
        screen.print(line, soft_wrap=True)
    if plot:
        flare_bench.plot(result, plot.expanduser())
        screen.print(f"plot: {plot}", markup=False)
    return result


def bench(
    model: str = typer.Option("hrm-sudoku-extreme-1k", "--model", metavar="MODEL", help=MODEL_HELP),
    batch: int = typer.Option(None, "--batch", min=1, metavar="N", help="Batch size (puzzles per step; default 64, "
                              "and each default recipe's own batch for --recipes)."),
    trials: int = typer.Option(3, "--trials", min=1, metavar="N", help="Timed steps per mode after one warm-up "
                               "step; the tables show their mean."),
    dtype: str = typer.Option("float32", "--dtype", metavar="DTYPE", help=DTYPE_HELP),
    train: bool = typer.Option(True, "--train/--no-train", help="Also time a training step (optimizer step)."),
    precision: bool = typer.Option(True, "--precision/--no-precision", help=PRECISION_HELP),
    precision_batch: int = typer.Option(4, "--precision-batch", min=1, metavar="B",
                                        help="Puzzles per step of the precision comparison (small: on a CPU, "
                                             "bfloat16/float16 steps are slow)."),
    recipes: bool = typer.Option(True, "--recipes/--no-recipes", help=RECIPES_HELP),
    first_answer: bool = typer.Option(True, "--first-answer/--no-first-answer", help=FIRST_ANSWER_HELP),
    flare: bool = typer.Option(False, "--flare/--no-flare", help=FLARE_HELP),
    flare_max_tokens: int = typer.Option(1 << 20, "--flare-max-tokens", min=1024, metavar="N",
                                         help="Largest N of --flare."),
    plot: Path = typer.Option(None, "--plot", metavar="FILE",
                              help="With --flare: write the log-log scaling plot (PNG; needs matplotlib) here."),
    as_json: bool = typer.Option(False, "--json", help="Print every measurement as one JSON object on stdout (the "
                                 "progress lines and tables go to stderr)."),
    out: Path = typer.Option(None, "--out", metavar="FILE", help="Also write every measurement to this JSON file "
                             "(replaced atomically)."),
) -> None:
    """Time a model's eval ACT step (ms, puzzles/s of a full solve, GFLOP/s, share of this machine's sgemm peak,
    peak memory; compiled and eager), its precisions, a training step, the default recipes' training examples/s,
    the time to a first answer (cold and warm) and, with --flare, FLARE's scaling."""
    from hrm_mlx import runtime

    runtime.configure()
    from hrm_mlx import bench as measure

    if dtype not in measure.PRECISION_DTYPES:
        raise HrmMlxError(f"--dtype takes {', '.join(measure.PRECISION_DTYPES)}, not {dtype!r}")
    _check_outputs(plot, flare)
    output.check_folder("--out", out)
    screen = err_console if as_json else console
    target = measure.resolve_model(model)
    env = measure.environment()
    screen.print(key_value_table("environment", env))
    for note in target.notes:
        screen.print(f"note: {note}", markup=False, soft_wrap=True)
    notes = target.notes + ([target.train_note] if train and target.train_note else [])
    report = {"environment": env,
              "model": {"name": target.name, "source": target.source, "notes": notes, "config": target.config},
              "eval_step": _eval_section(screen, measure, target, batch or 64, trials, dtype)}
    if precision:
        report["precision"] = _precision_section(screen, measure, target, precision_batch)
    if train:
        report["train_step"] = _train_section(screen, measure, target, batch or 64, trials, dtype)
    if recipes:
        report["recipes"] = _recipes_section(screen, measure, batch, trials)
    if first_answer:
        report["first_answer"] = _first_answer_section(screen, measure, trials)
    if flare:
        report["flare"] = _flare_section(screen, flare_max_tokens, plot)
    with output.Records(as_json, out) as records:
        records.emit(report)


def register(app: typer.Typer) -> None:
    app.command(epilog=output.EXIT_CODES)(bench)
