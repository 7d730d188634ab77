"""``hrm-mlx bench``: speed and memory of a model's eval ACT step, compiled and eager side by side."""

import json
from pathlib import Path

import typer

from hrm_mlx.cli.render import console, key_value_table

MODEL_HELP = ("Recipe whose model to benchmark, with random weights, e.g. hrm-sudoku-extreme-1k (the official "
              "27M-parameter Sudoku HRM).")


def bench(
    model: str = typer.Option("hrm-sudoku-extreme-1k", "--model", help=MODEL_HELP),
    batch: int = typer.Option(64, min=1, help="Batch size (puzzles per step)."),
    trials: int = typer.Option(3, min=1, help="Timed ACT steps per mode, after one warm-up step."),
    dtype: str = typer.Option("float32", help="Activation dtype: float32, bfloat16 or float16."),
    train: bool = typer.Option(True, "--train/--no-train", help="Also time a training step (optimizer step)."),
    json_file: Path = typer.Option(None, "--json", help="Also write the results to this JSON file."),
) -> None:
    """Time an eval ACT step (ms, GFLOP/s, share of this machine's sgemm peak) and a training step."""
    from hrm_mlx import bench as measure
    from hrm_mlx.train import load_recipe

    recipe = load_recipe(model)
    config = recipe["model"]
    env = measure.environment()
    console.print(key_value_table("environment", env))

    def on_trial(mode, i, seconds):
        console.print(f"  {mode:8s} trial {i + 1}: {1000 * seconds:9.1f} ms")

    result = measure.bench_eval_step(config, batch, trials, dtype=dtype, on_trial=on_trial)
    rows = {"model": f"{model} ({result['params']:,} parameters, {result['dtype']})",
            "batch": batch, "GFLOP per ACT step": f"{result['gflop_per_step']:.1f}",
            "sgemm peak (GFLOP/s)": f"{result['sgemm_gflops']:.1f}"}
    for mode in ("compiled", "eager"):
        r = result[mode]
        rows[mode] = (f"{r['ms_per_step']:.1f} ms/step, {r['gflops']:.1f} GFLOP/s "
                      f"({100 * r['share_of_peak']:.0f}% of peak), peak memory {r['peak_memory_gb']:.2f} GB")
    rows["compiled speed-up"] = f"{result['compiled_speedup']:.2f}x"
    console.print(key_value_table("eval ACT step", rows))
    report = {"environment": env, "eval_step": result}
    if train:
        result = measure.bench_train_step(recipe, batch, trials, dtype=dtype, on_trial=on_trial)
        rows = {mode: (f"{result[mode]['ms_per_step']:.1f} ms/step, {result[mode]['examples_per_s']:.1f} examples/s, "
                       f"peak memory {result[mode]['peak_memory_gb']:.2f} GB") for mode in ("compiled", "eager")}
        rows["compiled speed-up"] = f"{result['compiled_speedup']:.2f}x"
        console.print(key_value_table("training step", rows))
        report["train_step"] = result
    if json_file:
        json_file.write_text(json.dumps(report, indent=2))


def register(app: typer.Typer) -> None:
    app.command()(bench)
