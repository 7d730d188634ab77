"""Our model against the official PyTorch code (HRM or TRM) on this machine, side by side in one run (dev-only).

    python tools/bench_vs_official.py --torch-python .venv/bin/python --official /tmp/hrm_official
    python tools/bench_vs_official.py --torch-python .venv/bin/python --official /tmp/trm_official --recipe sudoku-cpu

Measures a recipe's model (default: the official HRM Sudoku size, 27,275,266 parameters) in float32 at one batch
size: an eval ACT step, a full solve (halt_max_steps eval steps) and a training step, ours (compiled and eager,
with hrm-mlx's runtime set-up as the command line does it) and the official code's at each --torch-threads
setting (through tools/official_torch_timing.py in the torch interpreter; the official HRM or TRM code by the
recipe's family; it has only attention, so a recipe with another token mixer is compared with the official model
of the same size using attention). The rounds alternate ours and theirs; the tables show the median of the rounds'
means and the ratio official / ours (> 1: we are faster) against the official code's best thread setting.
"""

import argparse
import json
import statistics
import subprocess
from pathlib import Path

import hrm_mlx  # noqa: F401  (first: fast BLAS)
from hrm_mlx import atomic, bench, runtime
from hrm_mlx.train import load_recipe


def official_times(args, config: dict, threads: int) -> dict:
    timing = Path(__file__).with_name("official_torch_timing.py")
    command = [args.torch_python, str(timing), "--family", config.get("family", "hrm"), "--official",
               str(args.official), "--config", json.dumps(config), "--batch", str(args.batch), "--trials",
               str(args.trials), "--threads", str(threads)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", required=True, help="python of an environment with torch 2.13 CPU")
    parser.add_argument("--official", type=Path, required=True,
                        help="checkout of sapientinc/HRM (HRM recipes) or SamsungSAILMontreal/TinyRecursiveModels "
                             "(TRM recipes)")
    parser.add_argument("--recipe", default="hrm-sudoku-extreme-1k", help="recipe whose model is compared")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--trials", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of ours and theirs")
    parser.add_argument("--torch-threads", default="1,2", help="official code's thread counts to try")
    parser.add_argument("--no-eval", action="store_true", help="time training steps only")
    parser.add_argument("--json", type=Path, help="write all numbers to this file")
    args = parser.parse_args()

    runtime.configure()
    recipe = load_recipe(args.recipe)
    config = {**recipe["model"], "forward_dtype": "float32"}
    recipe = {**recipe, "model": config}
    if "seq_len" not in config:
        raise SystemExit(f"recipe {args.recipe} leaves seq_len to its data; pick a recipe that sets it")
    steps = config["halt_max_steps"]
    threads = [int(t) for t in args.torch_threads.split(",")]
    rounds = []
    for _ in range(args.rounds):
        ours = {"train": bench.bench_train_step(recipe, args.batch, args.trials)}
        if not args.no_eval:
            ours["eval"] = bench.bench_eval_step(config, args.batch, args.trials)
        theirs = {t: official_times(args, config, t) for t in threads}
        rounds.append({"ours": ours, "theirs": theirs})

    def median(get):
        return statistics.median(get(r) for r in rounds)

    kinds = [("training step (ms)", "train", "train_step_mean_s", 1.0)]
    if not args.no_eval:
        kinds += [("eval ACT step (ms)", "eval", "eval_step_mean_s", 1.0),
                  (f"full solve, {steps} steps (ms)", "eval", "eval_step_mean_s", float(steps))]
    print(f"{args.recipe}: batch {args.batch}, float32, {args.rounds} round(s) of {args.trials} trial(s); "
          f"official code with attention{' (ours: ' + config['mixer'] + ')' if config.get('mixer', 'attention') != 'attention' else ''}")
    header = "".join(f"{f'official {t} thr':>16s}" for t in threads)
    print(f"{'':32s}{header}{'ours compiled':>15s}{'ours eager':>12s}{'best official / ours':>22s}")
    for name, part, key, scale in kinds:
        official = {t: scale * 1000 * median(lambda r, t=t: r["theirs"][t][key]) for t in threads}
        compiled = scale * median(lambda r: r["ours"][part]["compiled"]["ms_per_step"])
        eager = scale * median(lambda r: r["ours"][part]["eager"]["ms_per_step"])
        cells = "".join(f"{official[t]:16.1f}" for t in threads)
        print(f"{name:32s}{cells}{compiled:15.1f}{eager:12.1f}{min(official.values()) / compiled:21.2f}x")
    if args.json:
        atomic.write_json(args.json, {"recipe": args.recipe, "batch": args.batch, "rounds": rounds})


if __name__ == "__main__":
    main()
