"""FLARE scaling measured as data: one FLARE layer's forward against dense softmax attention over N tokens.

``scaling()`` times one forward of a FLARE layer (official defaults: deep residual K/V MLPs, attention scale 1)
and of a dense multi-head softmax-attention layer (fused QKV projection, ``mx.fast.scaled_dot_product_attention``,
output projection) at the same width, heads and batch, for N = 1k ... 1M tokens. It records the wall time (the
fastest of a few calls, and their median), the peak memory (``mx.get_peak_memory`` after
``mx.reset_peak_memory``: everything live during the call, i.e. weights, input, output and temporaries) and, per
4x N, the growth factors. Dense attention runs as far as its score matrix fits in memory (and a time budget);
beyond that its row is marked skipped with the reason.
Rendering (table, plot) is left to callers: tools/flare_scaling.py, the CLI.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from typing import Callable

import mlx.core as mx

from hrm_mlx.models.flare import Flare
from hrm_mlx.models.layers import Attention

DEFAULT_NS = tuple(1024 * 4**i for i in range(6))  # 1k, 4k, 16k, 64k, 256k, 1M
TARGET_GROWTH = 4.5  # FLARE's time may grow at most this much per 4x tokens
TARGET_SPEEDUP = 10.0  # at the largest N dense attention handles (at least 16k), FLARE this many times faster
TARGET_DENSE_N = 16384


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def dense_bytes(n: int, batch: int, num_heads: int) -> int:
    """Memory of the dense score matrix [B, H, N, N] in float32 (MLX's SDPA materialises it unless it has a fused
    kernel for the head size; the softmax then runs in place)."""
    return 4 * batch * num_heads * n * n


def measure(fn: Callable[[], mx.array], *, repeats: int = 3, budget_s: float = 20.0, warmup: bool = True) -> dict:
    """Time ``fn`` (evaluated): wall time, fastest and median of up to ``repeats`` calls, the process CPU time of
    the fastest call (all threads; unlike wall time it hardly moves when other programs share the cores) and
    the peak memory. The allocator cache is emptied first; one untimed warm-up call when ``warmup``; repeats stop
    once ``budget_s`` of timed calls are spent (a slow call is timed once)."""
    gc.collect()
    mx.clear_cache()
    if warmup:
        mx.eval(fn())
    times, cpu, peak = [], [], 0
    while len(times) < repeats and (not times or sum(times) < budget_s):
        mx.reset_peak_memory()
        start, start_cpu = time.perf_counter(), time.process_time()
        mx.eval(fn())
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        peak = max(peak, mx.get_peak_memory())
    best = min(range(len(times)), key=times.__getitem__)
    return {"seconds": times[best], "median_seconds": statistics.median(times), "cpu_seconds": cpu[best],
            "runs": len(times), "peak_bytes": peak}


def scaling(ns: tuple[int, ...] = DEFAULT_NS, *, channel_dim: int = 128, num_heads: int = 8, num_latents: int = 128,
            batch: int = 1, repeats: int = 3, rounds: int = 1, budget_s: float = 60.0, dense: bool = True,
            dense_max_n: int | None = None, dense_time_limit: float = 180.0, memory_limit: int | None = None,
            seed: int = 0, on_row: Callable[[dict], None] | None = None,
            on_round: Callable[[int, int, dict], None] | None = None) -> dict:
    """Forward time and peak memory of one FLARE layer and of dense attention for each N in ``ns``: up to
    ``repeats`` timed calls per N, fewer once they have taken ``budget_s`` seconds (see ``measure``). FLARE is
    measured over all N ``rounds`` times and the fastest round kept (on a shared machine, passes at different
    moments are likelier to catch an undisturbed one; ``on_round(round, n, measurement)`` reports each), then
    dense attention once per N.

    Dense attention is skipped ("memory") once its score matrix would exceed ``memory_limit`` (default 80% of the
    physical memory), ("time") once the time extrapolated from the previous N (x (N/N_prev)^2) exceeds
    ``dense_time_limit`` seconds, or ("limit") beyond ``dense_max_n``. Returns {"config", "rows", "targets"}; each
    row has n, flare_ms (fastest call), flare_median_ms, flare_cpu_ms, flare_peak_mb, and the same for dense_
    (None when skipped), dense_skipped (reason or None), speedup (dense / FLARE time), memory_ratio (dense /
    FLARE peak), flare_growth, flare_cpu_growth, flare_memory_growth and dense_growth (ratios to the previous
    row; None for the first)."""
    memory_limit = memory_limit or int(0.8 * physical_memory())
    mx.random.seed(seed)
    flare = Flare(channel_dim, num_heads, num_latents)
    attention = Attention(channel_dim, num_heads)
    mx.eval(flare.parameters(), attention.parameters())

    best: dict[int, dict] = {}
    for r in range(rounds):
        for n in ns:
            x = mx.random.normal((batch, n, channel_dim))
            mx.eval(x)
            f = measure(lambda: flare(x), repeats=repeats, budget_s=budget_s)  # always warm: steady state
            del x
            if n not in best or f["seconds"] < best[n]["seconds"]:
                best[n] = {**f, "peak_bytes": max(f["peak_bytes"], best.get(n, f)["peak_bytes"])}
            if on_round:
                on_round(r, n, f)

    rows: list[dict] = []
    prev = None
    for n in ns:
        f = best[n]
        row = {"n": n, "flare_ms": 1e3 * f["seconds"], "flare_median_ms": 1e3 * f["median_seconds"],
               "flare_cpu_ms": 1e3 * f["cpu_seconds"], "flare_runs": f["runs"],
               "flare_peak_mb": f["peak_bytes"] / 2**20}
        skip = None
        if not dense:
            skip = "off"
        elif dense_max_n is not None and n > dense_max_n:
            skip = "limit"
        elif dense_bytes(n, batch, num_heads) > memory_limit:
            skip = "memory"
        elif prev is not None and prev["dense_ms"] is not None and \
                prev["dense_ms"] * (n / prev["n"]) ** 2 / 1e3 > dense_time_limit:
            skip = "time"
        elif prev is not None and prev["dense_skipped"]:
            skip = prev["dense_skipped"]
        if skip is None:
            x = mx.random.normal((batch, n, channel_dim))
            mx.eval(x)
            expect = None if prev is None else prev["dense_ms"] * (n / prev["n"]) ** 2 / 1e3
            d = measure(lambda: attention(x, None), repeats=repeats, budget_s=budget_s,
                        warmup=expect is None or expect < 5.0)
            del x
            row.update(dense_ms=1e3 * d["seconds"], dense_median_ms=1e3 * d["median_seconds"],
                       dense_cpu_ms=1e3 * d["cpu_seconds"], dense_runs=d["runs"], dense_peak_mb=d["peak_bytes"] / 2**20)
        else:
            row.update(dense_ms=None, dense_median_ms=None, dense_cpu_ms=None, dense_runs=0, dense_peak_mb=None)
        row["dense_skipped"] = skip
        row["speedup"] = None if skip else row["dense_ms"] / row["flare_ms"]
        row["memory_ratio"] = None if skip else row["dense_peak_mb"] / row["flare_peak_mb"]
        row["flare_growth"] = None if prev is None else row["flare_ms"] / prev["flare_ms"]
        row["flare_cpu_growth"] = None if prev is None else row["flare_cpu_ms"] / prev["flare_cpu_ms"]
        row["flare_memory_growth"] = None if prev is None else row["flare_peak_mb"] / prev["flare_peak_mb"]
        row["dense_growth"] = None if prev is None or skip or prev["dense_ms"] is None else \
            row["dense_ms"] / prev["dense_ms"]
        rows.append(row)
        prev = row
        if on_row:
            on_row(row)
    config = {"channel_dim": channel_dim, "num_heads": num_heads, "head_dim": channel_dim // num_heads,
              "num_latents": num_latents, "batch": batch, "dtype": "float32", "device": str(mx.default_device()),
              "rounds": rounds, "repeats": repeats, "memory_limit_mb": memory_limit / 2**20}
    return {"config": config, "rows": rows, "targets": targets(rows)}


def targets(rows: list[dict]) -> dict:
    """The acceptance checks: the largest N ran; FLARE's time grows < 4.5x per 4x N; at the largest N dense
    attention ran (>= 16k), FLARE is >= 10x faster."""
    growth = [r["flare_growth"] for r in rows if r["flare_growth"] is not None]
    cpu_growth = [r["flare_cpu_growth"] for r in rows if r["flare_cpu_growth"] is not None]
    dense_rows = [r for r in rows if r["dense_ms"] is not None]
    last_dense = dense_rows[-1] if dense_rows else None
    return {
        "largest_n": rows[-1]["n"] if rows else 0,
        "max_flare_growth": max(growth) if growth else None,
        # geometric mean per 4x N over the whole range: robust to one disturbed measurement
        "mean_flare_growth": (rows[-1]["flare_ms"] / rows[0]["flare_ms"]) ** (1 / len(growth)) if growth else None,
        "growth_ok": bool(growth) and max(growth) < TARGET_GROWTH,
        "max_flare_cpu_growth": max(cpu_growth) if cpu_growth else None,
        "largest_dense_n": last_dense["n"] if last_dense else 0,
        "speedup_at_largest_dense_n": last_dense["speedup"] if last_dense else None,
        "speedup_ok": bool(last_dense) and last_dense["n"] >= TARGET_DENSE_N
                      and last_dense["speedup"] >= TARGET_SPEEDUP,
    }
