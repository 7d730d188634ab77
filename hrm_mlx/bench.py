"""Measurements returned as data (the CLI renders them): environment, sgemm peak, model step timings."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import time
from typing import Callable

import mlx.core as mx
from mlx.utils import tree_flatten

from hrm_mlx import runtime
from hrm_mlx.models import act, build


def environment() -> dict:
    blas = runtime.blas()
    return {
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "mlx": mx.__version__,
        "device": str(mx.default_device()),
        "cores": os.cpu_count(),
        "blas": blas.name,
        "blas_path": blas.path or blas.note,
        "jit_compiler": shutil.which("g++") or shutil.which("clang++") or "none",
    }


def sgemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Median float32 matmul throughput through MLX (the machine's practical peak for our models)."""
    a = mx.random.normal((size, size))
    b = mx.random.normal((size, size))
    mx.eval(a @ b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        mx.eval(a @ b)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def random_batch(config: dict, batch_size: int, seed: int = 0) -> dict:
    key = mx.random.key(seed)
    k1, k2 = mx.random.split(key)
    shape = (batch_size, config["seq_len"])
    return {
        "inputs": mx.random.randint(1, config["vocab_size"], shape, key=k1).astype(mx.int32),
        "labels": mx.random.randint(1, config["vocab_size"], shape, key=k2).astype(mx.int32),
        "puzzle_identifiers": mx.zeros((batch_size,), dtype=mx.int32),
    }


def time_eval_steps(model, batch: dict, *, compiled: bool, trials: int, warmup: int = 1,
                    on_trial: Callable[[int, float], None] | None = None) -> list[float]:
    """Seconds per eval ACT step (reset + model call + loss head), one timing per trial after warm-up."""
    step = act.make_eval_step(model, compiled=compiled)
    carry = act.initial_carry(model, batch)
    times = []
    for i in range(warmup + trials):
        start = time.perf_counter()
        carry, outputs, loss, metrics = step(carry, batch)
        mx.eval(carry, outputs, loss, metrics)
        if i >= warmup:
            times.append(time.perf_counter() - start)
            if on_trial:
                on_trial(i - warmup, times[-1])
    return times


def bench_eval_step(config: dict, batch_size: int, trials: int, *, dtype: str | None = None,
                    on_trial: Callable[[str, int, float], None] | None = None) -> dict:
    """Eval ACT step of a model built from ``config`` (random weights), compiled and eager side by side."""
    if dtype:
        config = {**config, "forward_dtype": dtype}
    model = build(config)
    mx.eval(model.parameters())
    batch = random_batch(config, batch_size)
    flops = model.flops_per_step(batch_size)
    peak = sgemm_gflops()
    result = {"params": sum(v.size for _, v in tree_flatten(model.trainable_parameters())), "batch": batch_size,
              "dtype": config["forward_dtype"], "gflop_per_step": flops / 1e9, "sgemm_gflops": peak}
    for mode in ("compiled", "eager"):
        mx.reset_peak_memory()
        times = time_eval_steps(model, batch, compiled=mode == "compiled", trials=trials,
                                on_trial=(lambda i, t, m=mode: on_trial(m, i, t)) if on_trial else None)
        median = statistics.median(times)
        result[mode] = {"ms_per_step": 1000 * median, "gflops": flops / median / 1e9,
                        "share_of_peak": flops / median / 1e9 / peak, "peak_memory_gb": mx.get_peak_memory() / 1e9,
                        "trials_ms": [1000 * t for t in times]}
    result["compiled_speedup"] = result["eager"]["ms_per_step"] / result["compiled"]["ms_per_step"]
    return result



def bench_train_step(recipe: dict, batch_size: int, trials: int, *, dtype: str | None = None,
                     on_trial: Callable[[str, int, float], None] | None = None) -> dict:
    """One optimizer step of the recipe (ACT step with the Q target, loss, backward, AdamATan2, SignSGD),
    compiled and eager side by side, on random data (the carry persists across steps as in training)."""
    from hrm_mlx.train import Trainer, initial_carry, resolve_config

    config = {**recipe["model"], **({"forward_dtype": dtype} if dtype else {})}
    train = {**resolve_config(recipe)["train"], "global_batch_size": batch_size}
    batch = random_batch(config, batch_size)
    result = {"batch": batch_size, "dtype": config["forward_dtype"]}
    for mode in ("compiled", "eager"):
        model = build(config)
        trainer = Trainer(model, train, total_steps=10**6, group=mx.distributed.init(),
                          compiled=mode == "compiled")
        carry = initial_carry(model, batch_size, config["seq_len"])
        mx.reset_peak_memory()
        times = []
        for i in range(1 + trials):
            start = time.perf_counter()
            carry, _ = trainer.step(i + 1, carry, batch)
            if i:
                times.append(time.perf_counter() - start)
                if on_trial:
                    on_trial(mode, i - 1, times[-1])
        median = statistics.median(times)
        result[mode] = {"ms_per_step": 1000 * median, "examples_per_s": batch_size / median,
                        "peak_memory_gb": mx.get_peak_memory() / 1e9, "trials_ms": [1000 * t for t in times]}
    result["compiled_speedup"] = result["eager"]["ms_per_step"] / result["compiled"]["ms_per_step"]
    return result
