"""Measurements returned as data (the CLI renders them): environment, sgemm peak, the model to benchmark, and
timings of its eval ACT step (compiled and eager, and in float32, bfloat16 and float16) and training step.

Timings follow mlx-lm's benchmark: untimed warm-up steps (compilation, allocation), then timed trials, each with
its own peak memory, summarised by their mean."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import mlx.core as mx
from mlx.utils import tree_flatten

from hrm_mlx import runtime, speed
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import act, build

# Names for the official architectures, so a results table reads "official-hrm-sudoku" rather than a recipe file.
OFFICIAL_MODELS = {
    "official-hrm-sudoku": "hrm-sudoku-extreme-1k",
    "official-trm-sudoku": "trm-sudoku-extreme-1k-att",
    "official-hrm-maze": "hrm-maze-30x30-hard-1k",
    "official-trm-maze": "trm-maze-30x30-hard-1k",
    "official-hrm-arc": "hrm-arc-1",
    "official-trm-arc": "trm-arc-1",
}
MODES = ("compiled", "eager")
PRECISION_DTYPES = ("float32", "bfloat16", "float16")  # the first is the reference of the others

Report = Callable[[str, str, dict], None]  # (mode or dtype, "trial N" or "averages", numbers)


def cpu_name() -> str:
    """The processor's model name, so a results table can name the machine."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    blas = runtime.blas()
    setup = runtime.current()
    return {
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": cpu_name(),
        "python": platform.python_version(),
        "mlx": mx.__version__,
        "device": str(mx.default_device()),
        "cores": speed.cores(),
        "blas": blas.name,
        "blas_path": blas.path or blas.note,
        "blas_threads": setup.blas_threads or "the BLAS's default",
        "speed_paths": (f"on ({speed.SWITCH}=0 turns them off): steps of 64 rows run as {speed.row_groups(64)} "
                        "row group(s) on parallel streams" if speed.enabled() else f"off ({speed.SWITCH}=0)"),
        "jit_compiler": setup.jit_compiler or shutil.which("g++") or shutil.which("clang++") or "none",
    }


def sgemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Median float32 matmul throughput through MLX on every core (the machine's practical peak for our models;
    a BLAS set to one thread per row-group stream runs on all cores for this measurement)."""
    threads = runtime.current().blas_threads
    if threads is not None:
        runtime.set_blas_threads(speed.cores())
    try:
        a = mx.random.normal((size, size))
        b = mx.random.normal((size, size))
        mx.eval(a @ b)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            mx.eval(a @ b)
            times.append(time.perf_counter() - start)
    finally:
        if threads is not None:
            runtime.set_blas_threads(threads)
    return 2 * size**3 / statistics.median(times) / 1e9


# -- the model ------------------------------------------------------------------------------------------------------


@dataclass
class BenchModel:
    """What ``--model`` named. ``parameters`` holds real weights (a model's ``parameters()`` tree), None for
    random ones; ``train`` the training settings of the training-step benchmark (a recipe's, or the defaults)."""

    name: str
    source: str
    config: dict
    train: dict = field(default_factory=dict)
    parameters: Any = None
    notes: list[str] = field(default_factory=list)
    train_note: str = ""  # where the training step's settings come from


def resolve_model(name: str) -> BenchModel:
    """A recipe name, an alias of OFFICIAL_MODELS or a recipe JSON file (its model with random weights), else
    anything ``hrm_mlx.io.load`` accepts (the real weights, the folder's config)."""
    from hrm_mlx import recipes
    from hrm_mlx.train import load_recipe

    recipe_name = OFFICIAL_MODELS.get(name, name)
    if recipe_name in recipes.names() or recipe_name.endswith(".json"):
        recipe = load_recipe(recipe_name)
        model = BenchModel(name, f"recipe {recipe['recipe']}, random weights", dict(recipe["model"]),
                           recipe.get("train", {}))
        if "num_puzzle_identifiers" not in model.config:
            # ARC recipes leave the table size to the built data, which a benchmark does not build.
            model.config["num_puzzle_identifiers"] = 1
            model.notes.append("the recipe leaves num_puzzle_identifiers to its data: benchmarked with a one-row "
                               "puzzle table; the eval step reads one row per puzzle either way, but the real table "
                               "adds memory and may slow the training step's embedding update")
        return model
    if not (Path(name).expanduser().exists() or "/" in name):
        raise HrmMlxError(f"unknown recipe {name!r}; a benchmarked model is a recipe ({', '.join(recipes.names())}), "
                          f"an alias ({', '.join(OFFICIAL_MODELS)}), a recipe JSON file, a model folder, an official "
                          "checkpoint or a Hugging Face repo id (owner/name)")
    return _from_folder(name)


def _from_folder(path_or_repo: str) -> BenchModel:
    from hrm_mlx import io, recipes

    folder = io.resolve(path_or_repo)
    loaded, config = io.load(folder)
    model = BenchModel(path_or_repo, f"model folder {folder}, its weights", config, parameters=loaded.parameters())
    # A training run records its recipe in config.json; its settings (EMA above all) shape the training step.
    recipe = config.get("recipe")
    if recipe in recipes.names():
        model.train = recipes.load(recipe).get("train", {})
        model.train_note = f"training step: settings of recipe {recipe}, random weights"
    else:
        model.train_note = "training step: hrm-mlx's default training settings, random weights"
    return model


def build_model(config: dict, dtype: str | None = None, parameters=None):
    """The model of ``config`` computing in ``dtype`` (default: the config's forward_dtype), with ``parameters``
    or random weights. The weights are float32 masters cast at use, so the same seed gives the same random
    weights in every dtype."""
    mx.random.seed(0)
    model = build({**config, "forward_dtype": dtype} if dtype else config)
    if parameters is not None:
        model.update(parameters)
    mx.eval(model.parameters())
    return model


def random_batch(config: dict, batch_size: int, seed: int = 0) -> dict:
    key = mx.random.key(seed)
    k1, k2 = mx.random.split(key)
    shape = (batch_size, config["seq_len"])
    return {
        "inputs": mx.random.randint(1, config["vocab_size"], shape, key=k1).astype(mx.int32),
        "labels": mx.random.randint(1, config["vocab_size"], shape, key=k2).astype(mx.int32),
        "puzzle_identifiers": mx.zeros((batch_size,), dtype=mx.int32),
    }


# -- timing ---------------------------------------------------------------------------------------------------------


def _numbers(seconds: float, peak_bytes: int, units_per_step: dict[str, float]) -> dict:
    return {"ms_per_step": 1000 * seconds, **{key: units / seconds for key, units in units_per_step.items()},
            "peak_memory_gb": peak_bytes / 1e9}


def time_steps(run_step: Callable[[], Any], *, trials: int, warmup: int = 1, units_per_step: dict[str, float],
               report: Callable[[str, dict], None] | None = None) -> tuple[dict, Any]:
    """Call ``run_step`` (one step, evaluated) ``warmup`` times untimed, then ``trials`` times timed.
    ``units_per_step`` maps a rate's key to the units one step does (e.g. puzzles_per_s: puzzles), reported per
    second. Returns ({"ms_per_step" (mean), rates (from the mean time), "peak_memory_gb" (highest trial),
    "trials": [the same per trial]}, the last step's result)."""
    for _ in range(warmup):
        run_step()
    seconds, peaks, trial_numbers = [], [], []
    for i in range(trials):
        mx.reset_peak_memory()
        start = time.perf_counter()
        result = run_step()
        seconds.append(time.perf_counter() - start)
        peaks.append(mx.get_peak_memory())
        trial_numbers.append(_numbers(seconds[-1], peaks[-1], units_per_step))
        if report:
            report(f"trial {i + 1}", trial_numbers[-1])
    summary = _numbers(statistics.mean(seconds), max(peaks), units_per_step)
    if report:
        report("averages", summary)
    return {**summary, "trials": trial_numbers}, result


def eval_step_runner(model, batch: dict, *, compiled: bool) -> Callable[[], dict]:
    """One eval ACT step per call (reset + model call + loss head) on a persistent carry; returns its outputs."""
    step = act.make_eval_step(model, compiled=compiled)
    carry = act.initial_carry(model, batch)

    def run() -> dict:
        nonlocal carry
        carry, outputs, loss, metrics = step(carry, batch)
        mx.eval(carry, outputs, loss, metrics)
        return outputs

    return run


def _reporter(report: Report | None, label: str) -> Callable[[str, dict], None] | None:
    return (lambda what, numbers: report(label, what, numbers)) if report else None


def bench_eval_step(config: dict, batch_size: int, trials: int, *, dtype: str | None = None, parameters=None,
                    report: Report | None = None) -> dict:
    """The eval ACT step, compiled and eager side by side, with GFLOP/s, the share of the sgemm peak and
    puzzles/s of a full solve (evaluation runs halt_max_steps ACT steps per puzzle)."""
    model = build_model(config, dtype, parameters)
    batch = random_batch(config, batch_size)
    flops = model.flops_per_step(batch_size)
    halt_max_steps = model.args.halt_max_steps
    peak = sgemm_gflops()
    result = {"params": sum(v.size for _, v in tree_flatten(model.trainable_parameters())), "batch": batch_size,
              "dtype": model.args.forward_dtype, "halt_max_steps": halt_max_steps, "gflop_per_step": flops / 1e9,
              "sgemm_gflops": peak}
    for mode in MODES:
        result[mode], _ = time_steps(eval_step_runner(model, batch, compiled=mode == "compiled"), trials=trials,
                                     units_per_step={"puzzles_per_s": batch_size / halt_max_steps,
                                                     "gflops": flops / 1e9},
                                     report=_reporter(report, mode))
        result[mode]["share_of_peak"] = result[mode]["gflops"] / peak
    result["compiled_speedup"] = result["eager"]["ms_per_step"] / result["compiled"]["ms_per_step"]
    return result


def bench_precision(config: dict, batch_size: int, *, parameters=None, report: Report | None = None) -> dict:
    """The compiled eval ACT step in each of PRECISION_DTYPES on the same weights and batch: one warm-up and ONE
    timed step each (MLX's bfloat16 and float16 matmuls have no BLAS path on a CPU and run ~40x slower there),
    the speed against float32, and the largest |logit - float32 logit| after those two ACT steps."""
    batch = random_batch(config, batch_size)
    result = {"batch": batch_size, "timed_steps": 1, "dtypes": {}}
    reference = reference_ms = None
    for dtype in PRECISION_DTYPES:
        model = build_model(config, dtype, parameters)
        numbers, outputs = time_steps(eval_step_runner(model, batch, compiled=True), trials=1,
                                      units_per_step={"puzzles_per_s": batch_size / model.args.halt_max_steps},
                                      report=_reporter(report, dtype))
        logits = outputs["logits"].astype(mx.float32)
        if reference is None:
            reference, reference_ms = logits, numbers["ms_per_step"]
        result["dtypes"][dtype] = {**numbers, "speed_vs_float32": reference_ms / numbers["ms_per_step"],
                                   "max_logit_diff": mx.abs(logits - reference).max().item()}
    return result


def bench_train_step(recipe: dict, batch_size: int, trials: int, *, dtype: str | None = None,
                     report: Report | None = None, modes: tuple[str, ...] = MODES) -> dict:
    """One optimizer step of ``recipe`` ({"model": config, "train": training settings}): ACT step with
    the Q target, loss, backward, AdamATan2, SignSGD (and the EMA if the settings keep one), compiled and eager
    side by side, on random weights and data (the carry persists across steps as in training). The step's cost
    does not depend on the weights' values."""
    from hrm_mlx.train import TrainConfig, Trainer

    config = recipe["model"]
    settings = {key: value for key, value in recipe.get("train", {}).items() if key != "data"}  # no data is built
    train = TrainConfig.from_dict({**settings, "global_batch_size": batch_size}, "train.")
    batch = random_batch(config, batch_size)
    result = {"batch": batch_size}
    for mode in modes:
        model = build_model(config, dtype)
        trainer = Trainer(model, train, total_steps=10**6, group=mx.distributed.init(), compiled=mode == "compiled")
        carry = trainer.initial_carry(config["seq_len"])
        step = 0

        def run() -> None:
            nonlocal carry, step
            step += 1
            carry, _ = trainer.step(step, carry, batch)

        result[mode], _ = time_steps(run, trials=trials, units_per_step={"examples_per_s": batch_size},
                                     report=_reporter(report, mode))
    result["dtype"] = model.args.forward_dtype
    if set(MODES) <= set(modes):
        result["compiled_speedup"] = result["eager"]["ms_per_step"] / result["compiled"]["ms_per_step"]
    return result


# -- what a user gets -----------------------------------------------------------------------------------------------

USER_TASKS = ("sudoku", "maze")  # `hrm-mlx train --task NAME` of these is timed with its default recipe
FIRST_PUZZLE = "sudoku.txt"  # in the examples shipped with the package: `hrm-mlx solve examples/sudoku.txt`


def bench_recipes(trials: int, *, batch_size: int | None = None, report: Report | None = None) -> dict:
    """Training examples/s of the default recipes of USER_TASKS (what `hrm-mlx train --task NAME` runs): the
    compiled training step at the recipe's batch size (or ``batch_size``), random data and weights."""
    from hrm_mlx import tasks
    from hrm_mlx.train import load_recipe

    results = {}
    for name in USER_TASKS:
        recipe = load_recipe(tasks.get(name).default_recipe)
        batch = batch_size or recipe["train"]["global_batch_size"]
        named = (lambda _mode, what, numbers, name=recipe["recipe"]: report(name, what, numbers)) if report else None
        result = bench_train_step(recipe, batch, trials, report=named, modes=("compiled",))
        results[recipe["recipe"]] = {"task": name, "batch": batch, **result["compiled"]}
    return results


def first_answer(runs: int = 3) -> dict:
    """Seconds of `hrm-mlx solve` on the shipped example Sudoku in a new process, cold (an empty MLX kernel cache,
    as on a new machine: a fresh TMPDIR) then warm (median of ``runs``), and of `hrm-mlx --help`."""
    import subprocess
    import sys
    import tempfile

    package = Path(__file__).resolve().parent  # examples/ sits in the package (wheel) or beside it (checkout)
    puzzle = next((p for p in (package / "examples" / FIRST_PUZZLE, package.parent / "examples" / FIRST_PUZZLE)
                   if p.is_file()), None)
    if puzzle is None:
        raise HrmMlxError(f"the example puzzle {FIRST_PUZZLE} is not installed with hrm_mlx")
    solve = [sys.executable, "-m", "hrm_mlx", "solve", str(puzzle)]

    def seconds(command, env) -> float:
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            raise HrmMlxError(f"{' '.join(command[2:])} failed: {done.stderr.strip()[-300:]}")
        return time.perf_counter() - start

    with tempfile.TemporaryDirectory(prefix="hrm-mlx-first-answer-") as fresh:
        env = {**os.environ, "TMPDIR": fresh}
        cold = seconds(solve, env)
        warm = [seconds(solve, env) for _ in range(runs)]
        help_s = [seconds([sys.executable, "-m", "hrm_mlx", "--help"], env) for _ in range(runs)]
    return {"puzzle": f"examples/{FIRST_PUZZLE}", "cold_s": cold, "warm_s": statistics.median(warm),
            "warm_runs_s": warm, "help_s": statistics.median(help_s)}
