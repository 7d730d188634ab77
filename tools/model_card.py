"""Package a trained model as a shipped model folder with a measured model card (dev tool, no torch).

    python tools/model_card.py /work/runs/shipped-sudoku --out weights/sudoku --dtype float16
    python tools/model_card.py /work/runs/shipped-maze2 --stage /work/runs/stage-maze9 --out weights/maze

Writes OUT/config.json + model.safetensors (the run's final model, re-saved in --dtype), OUT/training/ (each
stage's config.json, metrics.jsonl and curves.png, so the curves behind the card stay with it) and OUT/README.md:
family, mixer, size, the commands that reproduce every stage, data, training time, and accuracies measured here
on freshly generated held-out puzzles (seed 12345) through ``hrm_mlx.solve``, as ``hrm-mlx solve`` runs them:
Sudoku against the number of givens, mazes against the side (up to 60, beyond the training canvas) and on
Maze-Hard-like 30x30 mazes, both against a fixed number of ACT steps (accuracy_vs_steps.png), and the wall time of
one whole ``hrm-mlx solve`` on a fresh machine and warm. The card's YAML header (what the Hugging Face Hub reads,
with the headline accuracies) comes from hrm_mlx.model_card.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hrm_mlx  # noqa: F401  (first: preloads the fast BLAS before mlx.core)
import mlx.core as mx
from mlx.utils import tree_flatten

import numpy as np

from hrm_mlx import io, model_card
from hrm_mlx import solve as solver
from hrm_mlx.bench import cpu_name
from hrm_mlx.tasks import maze, sudoku
from hrm_mlx.train import latest_checkpoint

SEED = 12345  # held-out puzzles: a generator seed no training run uses
MAZE_SIDES = (5, 7, 9, 11, 13, 15, 17, 21, 25, 30)
MAZE_LOOPS = {"perfect": 0.0, "loops": 0.1}  # share of inner walls removed: none (one route), some (several)
MAZE_HARD = {"size": 30, "min_path": 110}  # the official Maze-Hard filter
SUDOKU_GIVENS = (21, 22, 23, 24, 25, 27, 30, 35, 40, 45)
FIXED_STEPS = (1, 2, 4, 8, 16, 32, 64, 128)


def stage_facts(run_dir: Path) -> dict:
    """A training stage: its run folder, or the folder a model card keeps of it (config.json and metrics.jsonl
    only: the step and hours then come from the logged training lines, each ``log_every`` steps at its rate)."""
    config = json.loads((run_dir / "config.json").read_text())
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [line for line in lines if line["split"] == "eval"]
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint:
        state = json.loads((checkpoint / "state.json").read_text())
        step, seconds = int(state["step"]), float(state["elapsed"])
    else:
        trained = [line for line in lines if line["split"] == "train"]
        step = trained[-1]["step"] if trained else 0
        seconds = sum(config["train"]["log_every"] / line["steps_per_s"] for line in trained)
    return {"dir": run_dir, "config": config, "step": step, "hours": seconds / 3600,
            "last_eval": evals[-1] if evals else None}


def command_of(stage: dict, previous: dict | None) -> str:
    """The command that trains this stage (its settings that differ from its recipe as --set), and where it
    stopped when that was before its last step (a stop keeps the schedule of the planned steps)."""
    from hrm_mlx.train import load_recipe, resolve_config

    config = stage["config"]
    train = config["train"]
    parts = [f"hrm-mlx train --recipe {config['recipe']}", f"--out runs/{stage['dir'].name}"]
    if train.get("init_from"):
        parts.append(f"--init-from runs/{previous['dir'].name}/model" if previous else
                     f"--init-from {train['init_from']}")
    base = resolve_config(load_recipe(config["recipe"])).to_dict()["train"]
    if base["steps"] != train["steps"]:
        parts.append(f"--steps {train['steps']}")
    for key, value in train.items():
        if key not in ("init_from", "data", "steps") and base.get(key) != value:
            parts.append(f"--set train.{key}={json.dumps(value)}")
    for key, value in train["data"].items():
        if base["data"].get(key) != value:
            parts.append(f"--set train.data.{key}={json.dumps(value).replace(' ', '')}")
    command = f"`{' '.join(parts)}`"
    if stage["step"] < train["steps"]:
        command += f", stopped at step {stage['step']:,} of {train['steps']:,}"
    return command


def held_out(task: str, n: int, stream: int, **options) -> list:
    """``n`` fresh puzzles from the task's generator, seeded (SEED, stream): never seen in training."""
    rng = np.random.default_rng([SEED, stream])
    if task == "sudoku":
        return [puzzle for puzzle, _ in sudoku.generate(n, rng, givens=options["givens"])]
    side = options["size"]
    return [m for m, _ in maze.generate(n, rng, size=side, loop_fraction=options.get("loop_fraction", 0.1),
                                          min_path=options.get("min_path", 1), canvas=side,
                                          far_goal=options.get("far_goal", 0.5))]


def rate(model, config, puzzles: list, **options) -> dict:
    """Share of ``puzzles`` that ``hrm_mlx.solve`` answers correctly (as ``hrm-mlx solve``; ``options`` are
    its max_steps/stop/num_aug), the mean ACT steps used and the seconds per puzzle."""
    started = time.perf_counter()
    solutions = solver.solve(model, config, puzzles, **options)
    seconds = time.perf_counter() - started
    return {"count": len(puzzles), "solved": float(np.mean([s.solved for s in solutions])),
            "steps": float(np.mean([s.steps for s in solutions])), "seconds_per_puzzle": seconds / len(puzzles)}


def percent(result: dict) -> str:
    return f"{100 * result['solved']:.1f}%"


def steps_table(model, config, sets: dict[str, list], numbers: dict) -> list[str]:
    """Accuracy of each puzzle set after exactly N ACT steps of the model on the puzzle alone (``--stop never
    --num-aug 1``: the question is what repeating the update does; one traced run of the longest N gives every
    shorter one), and with the default rule."""
    numbers["by_fixed_steps"] = {}
    for name, puzzles in sets.items():
        solutions = solver.solve(model, config, puzzles, max_steps=max(FIXED_STEPS), stop="never", trace=True,
                                 num_aug=1)
        numbers["by_fixed_steps"][name] = {
            steps: {"count": len(puzzles), "solved": float(np.mean([s.trace[steps - 1].solved for s in solutions]))}
            for steps in FIXED_STEPS}
    lines = ["| ACT steps | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for steps in FIXED_STEPS:
        lines.append(f"| {steps} | " + " | ".join(percent(numbers["by_fixed_steps"][name][steps]) for name in sets)
                     + " |")
    defaults = [numbers["default"][name] for name in sets]
    lines.append("| default (until stable) | " + " | ".join(f"{percent(r)} ({r['steps']:.1f} steps)"
                                                      for r in defaults) + " |")
    return lines


def maze_tables(model, config, n: int, beyond: tuple[int, ...]) -> tuple[list[str], dict]:
    numbers: dict = {"by_side": {}, "default": {}}
    count_beyond = max(10, n // 4)  # each maze beyond 30 may think for hundreds of steps over thousands of cells
    lines = [f"Against the maze side (`hrm-mlx solve` with no flags; {n} mazes of each kind per side up to 30, "
             f"{count_beyond} beyond; half the mazes with the goal farthest from "
             "the start; sides above the training canvas are solved at their own size):", "",
             "| side | " + " | ".join(f"{kind}: solved" for kind in MAZE_LOOPS) +
             " | mean path | mean ACT steps | s / maze |", "|---|" + "---|" * (len(MAZE_LOOPS) + 3)]
    for stream, side in enumerate(MAZE_SIDES + beyond):
        count = n if side <= 30 else count_beyond
        row, paths, steps, seconds = [], [], [], []
        for k, (kind, loops) in enumerate(MAZE_LOOPS.items()):
            puzzles = held_out("maze", count, 100 + 10 * stream + k, size=side, loop_fraction=loops)
            result = numbers["by_side"].setdefault(side, {})[kind] = rate(model, config, puzzles)
            row.append(percent(result))
            paths += [maze.shortest_path_length(p) for p in puzzles]
            steps.append(result["steps"])
            seconds.append(result["seconds_per_puzzle"])
        mark = " (beyond training)" if side > config["seq_len"] ** 0.5 else ""
        lines.append(f"| {side}{mark} | " + " | ".join(row) +
                     f" | {np.mean(paths):.0f} | {np.mean(steps):.1f} | {np.mean(seconds):.2f} |")
    lines += ["", f"Maze-Hard-like: 30x30 with a shortest path of {MAZE_HARD['min_path']}+ cells:", "",
              "| mazes | " + " | ".join(MAZE_LOOPS) + " |", "|---|" + "---|" * len(MAZE_LOOPS)]
    hard_sets = {}
    for k, (kind, loops) in enumerate(MAZE_LOOPS.items()):
        hard_sets[f"30x30 hard, {kind}"] = held_out("maze", n, 300 + k, loop_fraction=loops, **MAZE_HARD)
    for name, puzzles in hard_sets.items():
        numbers["default"][name] = rate(model, config, puzzles)
    lines.append(f"| {n} each | " + " | ".join(percent(numbers["default"][name]) for name in hard_sets) + " |")
    sets = {"15x15": held_out("maze", n, 400, size=15), "21x21": held_out("maze", n, 401, size=21),
            "30x30": held_out("maze", n, 402, size=30), **hard_sets}
    for name in ("15x15", "21x21", "30x30"):
        numbers["default"][name] = rate(model, config, sets[name])
    lines += ["", "Does thinking longer help? The same held-out mazes after exactly N ACT steps "
              "(`--max-steps N --stop never`), and with the default rule:", "", *steps_table(model, config, sets,
                                                                                            numbers)]
    return lines, numbers


def sudoku_tables(model, config, n: int) -> tuple[list[str], dict]:
    numbers: dict = {"by_givens": {}, "by_givens_one_version": {}, "default": {}}
    versions = sudoku.TASK.default_versions
    lines = ["Against the number of givens (`hrm-mlx solve` with no flags: the puzzle alone, and when its "
             f"answer fails the check, with {versions - 1} symmetric copies of it that vote; and the puzzle alone "
             "only, `--num-aug 1`; each row its own "
             "generated set; the generator digs below 22 givens with \"-2 +1\" moves, 21 givens take seconds per "
             "puzzle and 17-20 are out of its reach (20 fails often), so fewer puzzles are measured there):", "",
             "| givens | puzzles | solved | mean ACT steps | s / puzzle | puzzle alone |", "|---|---|---|---|---|---|"]
    for stream, givens in enumerate(SUDOKU_GIVENS):
        count = n // 4 if givens < 22 else n
        puzzles = held_out("sudoku", count, 100 + stream, givens=givens)
        result = numbers["by_givens"][givens] = rate(model, config, puzzles)
        alone = numbers["by_givens_one_version"][givens] = rate(model, config, puzzles, num_aug=1)
        lines.append(f"| {givens} | {count} | {percent(result)} | {result['steps']:.1f} | "
                     f"{result['seconds_per_puzzle']:.3f} | {percent(alone)} |")
    sets = {"22-24 givens": held_out("sudoku", n, 400, givens=(22, 24)),
            "25-29 givens": held_out("sudoku", n, 401, givens=(25, 29)),
            "30-45 givens": held_out("sudoku", n, 402, givens=(30, 45))}
    for name, puzzles in sets.items():
        numbers["default"][name] = rate(model, config, puzzles, num_aug=1)
    lines += ["", "Does thinking longer help? The same held-out puzzles, each alone (`--num-aug 1`), after exactly N "
              "ACT steps (`--max-steps N --stop never`), and with the default stopping rule:", "",
              *steps_table(model, config, sets, numbers)]
    return lines, numbers


def plot(task: str, numbers: dict, out: Path) -> None:
    """accuracy_vs_steps.png: solved against fixed ACT steps per puzzle set, and against side or givens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, by_steps in numbers["by_fixed_steps"].items():
        steps = sorted(by_steps)
        left.plot(steps, [100 * by_steps[s]["solved"] for s in steps], "o-", label=name)
    left.set_xscale("log", base=2)
    left.set_xlabel("ACT steps (--max-steps N --stop never)")
    left.set_ylabel("solved (%)")
    left.set_ylim(0, 100)
    left.legend()
    if task == "maze":
        sides = sorted(numbers["by_side"])
        for kind in MAZE_LOOPS:
            right.plot(sides, [100 * numbers["by_side"][s][kind]["solved"] for s in sides], "s-", label=kind)
        right.set_xlabel("maze side (default solve)")
    else:
        givens = sorted(numbers["by_givens"])
        right.plot(givens, [100 * numbers["by_givens"][g]["solved"] for g in givens], "s-",
                   label="default solve (copies vote when its answer fails)")
        right.plot(givens, [100 * numbers["by_givens_one_version"][g]["solved"] for g in givens], "^--",
                   label="the puzzle alone (--num-aug 1)")
        right.set_xlabel("givens")
    right.set_ylim(0, 100)
    right.legend()
    fig.suptitle(f"shipped {task} model on held-out puzzles (seed {SEED})")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def wall_times(task: str, model_dir: Path) -> list[str]:
    """Seconds of a whole ``hrm-mlx solve`` of one puzzle, on a fresh machine (empty MLX kernel cache) and warm."""
    examples = {"sudoku": {"9x9 Sudoku": held_out("sudoku", 1, 500, givens=(22, 26))},
                "maze": {"15x15 maze": held_out("maze", 1, 501, size=15, far_goal=1.0),
                         "30x30 maze (Maze-Hard-like)": held_out("maze", 1, 502, loop_fraction=0.0, **MAZE_HARD)}}
    module = sudoku if task == "sudoku" else maze
    lines = ["| puzzle | fresh machine | warm |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as scratch:
        for name, [puzzle] in examples[task].items():
            path = Path(scratch) / f"{name.split()[0]}.txt"
            path.write_text(module.to_text(puzzle) + "\n")
            kernels = Path(scratch) / f"kernels-{path.stem}"
            kernels.mkdir()
            times = []
            for _ in range(2):  # the first run builds MLX's kernels, the second reuses them
                started = time.perf_counter()
                subprocess.run(["hrm-mlx", "solve", str(path), "--model", str(model_dir)], check=True,
                               capture_output=True, env={**os.environ, "TMPDIR": str(kernels)})
                times.append(time.perf_counter() - started)
            lines.append(f"| {name} | {times[0]:.1f} s | {times[1]:.1f} s |")
    return lines


def pooled(results: list[dict]) -> tuple[float, int]:
    count = sum(r["count"] for r in results)
    return sum(r["solved"] * r["count"] for r in results) / count, count


def headlines(task: str, numbers: dict) -> list:
    """The accuracies the card's YAML header reports (pooled over the table rows they name)."""
    if task == "maze":
        sides = [s for s in numbers["by_side"] if s <= 30]
        groups = {f"held-out generated mazes of sides {sides[0]}-{sides[-1]} (seed {SEED})":
                  [r for s in sides for r in numbers["by_side"][s].values()],
                  f"held-out generated 30x30 mazes with a shortest path of {MAZE_HARD['min_path']}+ cells "
                  f"(seed {SEED})": [r for name, r in numbers["default"].items() if "hard" in name]}
    else:
        groups = {f"held-out generated Sudokus with {low}-{high} givens (seed {SEED})":
                  [r for g, r in numbers["by_givens"].items() if low <= g <= high]
                  for low, high in ((25, 45), (21, 24))}
    out = []
    for dataset, results in groups.items():
        solved, count = pooled(results)
        out.append(model_card.Accuracy(solved, "solved (checked answers)", dataset, count))
    return out


def accuracy_tables(task: str, model_dir: Path, n: int, beyond: tuple[int, ...]) -> tuple[list[str], dict]:
    model, config = io.load(model_dir)
    lines, numbers = sudoku_tables(model, config, n) if task == "sudoku" else maze_tables(model, config, n, beyond)
    plot(task, numbers, model_dir / "accuracy_vs_steps.png")
    lines += ["", "![accuracy against ACT steps](accuracy_vs_steps.png)", "",
              "Wall time of one whole `hrm-mlx solve` of one puzzle (process start to answer):", "",
              *wall_times(task, model_dir)]
    return lines, numbers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the final training run (its model/ folder is shipped)")
    parser.add_argument("--stage", type=Path, action="append", default=[],
                        help="an earlier run whose model started this one (--init-from), oldest first")
    parser.add_argument("--out", type=Path, required=True, help="model folder to write, e.g. weights/sudoku")
    parser.add_argument("--dtype", default="float16", help="stored dtype of the shipped weights")
    parser.add_argument("--n", type=int, default=200, help="held-out puzzles per table row (fewer where they are "
                        "slow to generate or solve)")
    parser.add_argument("--beyond", type=int, nargs="*", default=[45, 60],
                        help="maze sides measured beyond the table's 5-30 (each solve's budget grows with the area)")
    parser.add_argument("--note", default="", help="Markdown paragraph for the card: what was tried, what fell short")
    args = parser.parse_args()

    stages = [stage_facts(d) for d in [*args.stage, args.run]]
    model_dir = args.run / "model"
    staging = Path(tempfile.mkdtemp(prefix=".card-", dir=args.out.parent))
    work = staging / args.out.name
    try:
        model, config = io.load(model_dir)
        io.save(model, config, work, dtype=args.dtype)
        for stage in stages:
            target = work / "training" / stage["dir"].name
            target.mkdir(parents=True)
            for name in ("config.json", "metrics.jsonl", "curves.png"):
                if (stage["dir"] / name).is_file():
                    shutil.copy2(stage["dir"] / name, target / name)
        task = config["task"]["name"]
        started = time.time()
        lines, numbers = accuracy_tables(task, work, args.n, tuple(args.beyond))
        (work / "training" / "accuracy.json").write_text(json.dumps(numbers, indent=2))
        params = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
        size_kb = sum(p.stat().st_size for p in work.glob("*.safetensors")) / 1024
        text = render_card(task, config, stages, params, size_kb, args.dtype, lines, time.time() - started,
                           args.note, model.runs_at_any_size)
        card = model_card.render(model_card.metadata(config, accuracy=headlines(task, numbers)), text)
        (work / "README.md").write_text(card)
        if args.out.exists():
            shutil.rmtree(args.out)
        os.replace(work, args.out)
    finally:
        shutil.rmtree(staging)
    print(f"wrote {args.out}")
    return 0


def render_card(task, config, stages, params, size_kb, dtype, accuracy_lines, eval_seconds, note,
                any_size: bool) -> str:
    mixer = {"conv": "a 3x3 convolution over the grid (mixer `conv`)",
             "grid_mask": "attention masked to each cell's row, column and box peers (mixer `grid_mask`)",
             "attention": "official attention"}.get(config.get("mixer"), config.get("mixer"))
    hours = sum(s["hours"] for s in stages)
    out = [f"# Shipped {task} model", "",
           f"`hrm-mlx solve` uses this model by default for {task} puzzles.", "",
           "## Model", "",
           f"- Family: **{config['family'].upper()}** (TRM-style recursion: H_cycles (T) {config['H_cycles']}, "
           f"L_cycles (n) {config['L_cycles']}, {config['L_layers']} blocks, hidden {config['hidden_size']}, "
           f"up to {config['halt_max_steps']} ACT steps with a learned halt head).",
           f"- Token mixer: {mixer}. Not an official architecture: the official recipes keep official attention; "
           "this mixer lets a small model learn the task on a 2-core CPU.",
           f"- Size: {params:,} parameters, stored as {dtype} ({size_kb:.0f} KB); computes in "
           f"{config['forward_dtype']}.",
           f"- Input: {config['seq_len']} tokens (vocabulary {config['vocab_size']}); task encoding "
           f"`{json.dumps(config['task'])}`." + (" No parameter depends on the grid's size: trained on that canvas, "
                                                 "it solves mazes of any side at their own size." if any_size else ""),
           "",
           "## Training", "",
           f"On {cpu_name()}, 2 cores, one single-threaded process per run (`MKL_NUM_THREADS=1`), MLX "
           f"{mx.__version__}; {hours:.1f} h of training in total, in several sittings "
           "(`--time-limit` then `--resume`). Stages, oldest first, each started from the previous one's model; the "
           "command reproduces the stage:", ""]
    previous = None
    for stage in stages:
        cfg = stage["config"]
        last = stage["last_eval"] or {}
        out += [f"1. `{stage['dir'].name}`: {cfg['description']}",
                f"   - {stage['step']:,} optimizer steps of {cfg['train']['global_batch_size']} examples, "
                f"{stage['hours']:.1f} h; last in-training eval ({last.get('count', 0)} held-out puzzles, "
                f"{cfg['model']['halt_max_steps']} ACT steps): exact {last.get('exact_accuracy', float('nan')):.3f}.",
                f"   - Data: `{json.dumps(cfg['train']['data'])}`",
                f"   - {command_of(stage, previous)}"]
        previous = stage
    out += ["", "Curves: `training/<stage>/metrics.jsonl` and `curves.png`.", "", *([note, ""] if note else []),
            "## Accuracy", "",
            f"Measured on this model folder (the {dtype} weights) with held-out puzzles generated with seed {SEED} "
            f"(training used seed 0), on the machine above ({eval_seconds / 60:.0f} min for all tables). "
            f"Numbers are in `training/accuracy.json`.", "", *accuracy_lines, ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
