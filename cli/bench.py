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
    json_file: Path = typer.Option(None, "--json", help="Also write the results to this JSON file."),
) -> None:
    """Time one eval ACT step (ms), achieved GFLOP/s and its share of this machine's sgemm peak."""
    from hrm_mlx import bench as measure
    from hrm_mlx import recipes

    config = recipes.load(model)["model"]
    env = measure.environment()
    console.print(key_value_table("environment", env))

    def on_trial(mode, i, seconds):
        console.print(f"  {mode:8s} trial {i + 1}: {1000 * seconds:9.1f} ms per ACT step")

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
    if json_file:
        json_file.write_text(json.dumps({"environment": env, "eval_step": result}, indent=2))


def register(app: typer.Typer) -> None:
    app.command()(bench)
