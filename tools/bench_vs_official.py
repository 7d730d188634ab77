"""Our HRM against the official PyTorch HRM on this machine, side by side in one run (dev-only).

    python tools/bench_vs_official.py --torch-python /work/venv-torch/bin/python --official /tmp/hrm_official

Measures, at the official Sudoku size (27,275,266 parameters, float32): an eval ACT step, a full solve
(halt_max_steps eval steps) and a training step, ours (compiled and eager) and the official code's (through
tools/official_torch_timing.py in the torch interpreter), then prints the ratios official / ours (> 1: we are faster).
"""

import argparse
import json
import subprocess
from pathlib import Path

import hrm_mlx  # noqa: F401  (first: fast BLAS, native JIT)
from hrm_mlx import atomic, bench
from hrm_mlx.train import load_recipe


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", required=True, help="python of an environment with torch 2.13 CPU")
    parser.add_argument("--official", type=Path, required=True, help="checkout of sapientinc/HRM")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write all numbers to this file")
    args = parser.parse_args()

    recipe = load_recipe("hrm-sudoku-extreme-1k")
    steps = recipe["model"]["halt_max_steps"]
    ours_eval = bench.bench_eval_step(recipe["model"], args.batch, args.trials, dtype="float32")
    ours_train = bench.bench_train_step(recipe, args.batch, args.trials, dtype="float32")
    timing = Path(__file__).with_name("official_torch_timing.py")
    theirs = json.loads(subprocess.run(
        [args.torch_python, str(timing), "--official", str(args.official), "--batch", str(args.batch),
         "--trials", str(args.trials)], check=True, capture_output=True, text=True).stdout)

    rows = [("eval ACT step (ms)", 1000 * theirs["eval_step_mean_s"], ours_eval["compiled"]["ms_per_step"],
             ours_eval["eager"]["ms_per_step"]),
            (f"full solve, {steps} steps (s)", steps * theirs["eval_step_mean_s"],
             steps * ours_eval["compiled"]["ms_per_step"] / 1000, steps * ours_eval["eager"]["ms_per_step"] / 1000),
            ("training step (ms)", 1000 * theirs["train_step_mean_s"], ours_train["compiled"]["ms_per_step"],
             ours_train["eager"]["ms_per_step"])]
    print(f"official HRM Sudoku size, batch {args.batch}, float32; sgemm peak {ours_eval['sgemm_gflops']:.0f} GFLOP/s")
    print(f"{'':28s} {'official':>10s} {'ours comp.':>11s} {'ours eager':>11s} {'speed-up':>9s}")
    for name, official, compiled, eager in rows:
        print(f"{name:28s} {official:10.1f} {compiled:11.1f} {eager:11.1f} {official / compiled:8.2f}x")
    print(f"eval step: {ours_eval['compiled']['gflops']:.0f} GFLOP/s compiled = "
          f"{100 * ours_eval['compiled']['share_of_peak']:.0f}% of the sgemm peak; compiled/eager speed-up "
          f"{ours_eval['compiled_speedup']:.2f}x (eval), {ours_train['compiled_speedup']:.2f}x (train)")
    if args.json:
        atomic.write_json(args.json, {"official": theirs, "ours_eval": ours_eval, "ours_train": ours_train})


if __name__ == "__main__":
    main()
