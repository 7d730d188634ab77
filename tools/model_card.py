"""Package a trained model as a shipped model folder with a measured model card (dev tool, no torch).

    python tools/model_card.py /work/runs/shipped-sudoku --out weights/sudoku --dtype float16
    python tools/model_card.py /work/runs/shipped-maze2 --stage /work/runs/stage-maze9 --out weights/maze

Writes OUT/config.json + model.safetensors (the run's final model, re-saved in --dtype), OUT/training/ (each
stage's config.json, metrics.jsonl and curves.png, so the curves behind the card stay with it) and OUT/README.md:
family, mixer, size, the commands that reproduce every stage, data, training time, and accuracies measured here
on freshly generated held-out puzzles through ``hrm-mlx eval`` (each table names its command). Sudoku: against
the number of givens and against --max-steps; maze: against the maze side and against --max-steps. The card's
YAML header (what the Hugging Face Hub reads, with the headline accuracy) comes from hrm_mlx.model_card.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import hrm_mlx  # noqa: F401  (first: preloads the fast BLAS before mlx.core)
import mlx.core as mx
from mlx.utils import tree_flatten

from hrm_mlx import io, model_card
from hrm_mlx.bench import cpu_name
from hrm_mlx.train import evaluate_model, latest_checkpoint

SUDOKU_GIVENS = (22, 24, 26, 28, 30, 32, 35, 38, 41, 45)
MAZE_SIDES = (5, 7, 9, 11, 13, 15)
MAX_STEPS = (1, 2, 4, 8, 16)
SEED = 12345  # held-out puzzles: a generator seed no training run uses


def stage_facts(run_dir: Path) -> dict:
    config = json.loads((run_dir / "config.json").read_text())
    checkpoint = latest_checkpoint(run_dir)
    state = json.loads((checkpoint / "state.json").read_text()) if checkpoint else {}
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    return {"dir": run_dir, "config": config, "step": int(state.get("step", 0)),
            "hours": float(state.get("elapsed", 0.0)) / 3600, "last_eval": evals[-1] if evals else None}


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
    base = resolve_config(load_recipe(config["recipe"]))["train"]
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


def measure(model: Path, settings: dict, n: int, max_steps: int | None = None) -> dict:
    result = evaluate_model(str(model), settings={"seed": SEED, **settings}, n=n, max_steps=max_steps)
    return {"exact": result["exact_accuracy"], "solved": result["solved"], "steps": result["act_steps"],
            "count": result["count"]}


def config_steps(model: Path) -> int:
    return int(json.loads((model / "config.json").read_text())["halt_max_steps"])


def eval_command(model_name: str, settings: dict, n: int, max_steps: int | None = None) -> str:
    sets = " ".join(f"--set {k}={json.dumps(v).replace(' ', '')}" for k, v in {"seed": SEED, **settings}.items())
    return (f"hrm-mlx eval --model {model_name} {sets} --n {n}" + (f" --max-steps {max_steps}" if max_steps else ""))


def breakdown(model: Path, rows: list[tuple[int, dict, int]]) -> tuple[dict, list[str]]:
    """Measure each (key, settings, puzzles) row: {key: numbers} and the table lines."""
    numbers, lines = {}, []
    for key, settings, count in rows:
        r = numbers[key] = measure(model, settings, count)
        lines.append(f"| {key} | {r['count']} | {100 * r['solved']:.1f}% | {r['steps']:.2f} |")
    return numbers, lines


def accuracy_tables(task: str, model: Path, model_name: str, n: int, data: dict) -> tuple[list[str], dict]:
    lines, numbers = [], {}
    if task == "sudoku":
        low, high = 30, data["givens"][1] if isinstance(data["givens"], list) else data["givens"]
        headline = {"givens": [low, high]}
        numbers["headline"] = measure(model, headline, n)
        numbers["headline_dataset"] = f"held-out generated Sudokus with {low}-{high} givens (seed {SEED})"
        lines += [f"**{100 * numbers['headline']['solved']:.1f}% solved** (checker: givens kept, every row, column "
                  f"and box complete) on {n} held-out generated puzzles with {low}-{high} givens, running "
                  f"{config_steps(model)} ACT steps as the official evaluation does (the halt head would stop after "
                  f"{numbers['headline']['steps']:.2f} on average):", "",
                  f"    {eval_command(model_name, headline, n)}", "",
                  "Against the number of givens (each row its own generated set; the digger cannot make "
                  "puzzles below 22 givens in reasonable time, so 17-21 are not measured here):", "",
                  "| givens | puzzles | solved | mean halt-head steps |", "|---|---|---|---|"]
        # digging below 24 givens is slow
        numbers["by_givens"], rows = breakdown(model, [(g, {"givens": [g, g]}, 50 if g < 24 else n // 4 if g < 28
                                                        else n // 2) for g in SUDOKU_GIVENS])
        lines += [*rows, "", f"    {eval_command(model_name, {'givens': ['G', 'G']}, n // 2).replace(chr(34), '')}"]
    else:
        sides = data["size"] if isinstance(data["size"], list) else [data["size"], data["size"]]
        headline = {"size": sides, "min_path": data["min_path"], "loop_fraction": data["loop_fraction"]}
        numbers["headline"] = measure(model, headline, n)
        numbers["headline_dataset"] = f"held-out generated mazes of sides {sides[0]}-{sides[1]} (seed {SEED})"
        lines += [f"**{100 * numbers['headline']['solved']:.1f}% shortest paths** (checker: a connected S-to-G path "
                  f"through open cells whose length equals the BFS distance; loops allowed, so any shortest path "
                  f"counts) on {n} held-out generated mazes of sides {sides[0]}-{sides[1]}; exact match with the "
                  f"generator's path {100 * numbers['headline']['exact']:.1f}%:", "",
                  f"    {eval_command(model_name, headline, n)}", "",
                  "Against the maze side:", "", "| side | mazes | shortest paths | mean halt-head steps |",
                  "|---|---|---|---|"]
        # few distinct 5x5 mazes exist
        numbers["by_side"], rows = breakdown(model, [(side, {**headline, "size": [side, side]},
                                                      40 if side == 5 else n // 2)
                                                     for side in MAZE_SIDES if side <= sides[1]])
        lines += rows
    lines += ["", "Does thinking longer help? The same held-out puzzles with a fixed number of ACT steps "
              "(`--max-steps`; the model was trained with up to its halt_max_steps):", "",
              "| --max-steps | solved |", "|---|---|"]
    numbers["by_max_steps"] = {}
    for steps in MAX_STEPS:
        r = measure(model, headline, n, max_steps=steps)
        numbers["by_max_steps"][steps] = r
        lines.append(f"| {steps} | {100 * r['solved']:.1f}% |")
    lines += ["", f"    {eval_command(model_name, headline, n, max_steps=8)}"]
    return lines, numbers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the final training run (its model/ folder is shipped)")
    parser.add_argument("--stage", type=Path, action="append", default=[],
                        help="an earlier run whose model started this one (--init-from), oldest first")
    parser.add_argument("--out", type=Path, required=True, help="model folder to write, e.g. weights/sudoku")
    parser.add_argument("--dtype", default="float16", help="stored dtype of the shipped weights")
    parser.add_argument("--n", type=int, default=1000, help="held-out puzzles for the headline and sweeps")
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
        lines, numbers = accuracy_tables(task, work, f"weights/{args.out.name}", args.n, config["data"])
        (work / "training" / "accuracy.json").write_text(json.dumps(numbers, indent=2))
        params = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
        size_kb = sum(p.stat().st_size for p in work.glob("*.safetensors")) / 1024
        text = render_card(task, config, stages, params, size_kb, args.dtype, lines, time.time() - started,
                           args.note)
        headline = model_card.Accuracy(numbers["headline"]["solved"], "solved (checked answers)",
                                       numbers["headline_dataset"], numbers["headline"]["count"])
        card = model_card.render(model_card.metadata(config, accuracy=[headline]), text)
        (work / "README.md").write_text(card)
        if args.out.exists():
            shutil.rmtree(args.out)
        os.replace(work, args.out)
    finally:
        shutil.rmtree(staging)
    print(f"wrote {args.out}")
    return 0


def render_card(task, config, stages, params, size_kb, dtype, accuracy_lines, eval_seconds, note) -> str:
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
           f"`{json.dumps(config['task'])}`.", "",
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
                f"{stage['hours']:.1f} h; last in-training eval (500 held-out puzzles): exact "
                f"{last.get('exact_accuracy', float('nan')):.3f}.",
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
