"""FLARE scaling measured as data: one FLARE layer's forward against dense softmax attention over N tokens.

``scaling()`` times one forward of a FLARE layer (official defaults: deep residual K/V MLPs, attention scale 1)
and of a dense multi-head softmax-attention layer (fused QKV projection, ``mx.fast.scaled_dot_product_attention``,
output projection) at the same width, heads and batch, for N = 1k ... 1M tokens. It records the wall time (the
fastest of a few calls, and their median), the peak memory (``mx.get_peak_memory`` after
``mx.reset_peak_memory``: everything live during the call, i.e. weights, input, output and temporaries) and, per
4x N, the growth factors. Dense attention runs as far as its score matrix fits in memory (and a time budget);
beyond that its row is marked skipped with the reason.
The table's lines (``TABLE_HEADER``, ``table_row``, ``targets_lines``) and the plot (``plot``) are rendered here
for both callers, tools/flare_scaling.py and ``hrm-mlx bench --flare``.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from typing import Callable

import mlx.core as mx

from hrm_mlx import atomic
from hrm_mlx.models.flare import Flare
from hrm_mlx.models.layers import Attention

MIN_N = 1024
DEFAULT_NS = tuple(MIN_N * 4**i for i in range(6))  # 1k, 4k, 16k, 64k, 256k, 1M
TARGET_GROWTH = 4.5  # FLARE's time may grow at most this much per 4x tokens
TARGET_SPEEDUP = 10.0  # at the largest N dense attention handles (at least 16k), FLARE this many times faster
TARGET_DENSE_N = 16384


def token_counts(max_n: int, min_n: int = MIN_N) -> tuple[int, ...]:
    """N = min_n, 4 min_n, 16 min_n, ... up to max_n: 4x steps, the unit of the growth factors."""
    ns = []
    while min_n <= max_n:
        ns.append(min_n)
        min_n *= 4
    return tuple(ns)


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


# -- rendering ------------------------------------------------------------------------------------------------------

LEGEND = ("ms: wall time of the fastest timed call; cpu ms: process CPU time of that call (all threads); "
          "x/4N: growth per 4x tokens; peak MB: everything live during the call; a dense row in parentheses was "
          "skipped: (memory) its score matrix would not fit, (time) its estimated time is over the limit, "
          "(limit) beyond the largest N asked for dense attention, (off) dense attention not asked for.")
_COLUMNS = (f"{'N':>9} | {'FLARE ms':>9} {'x/4N':>5} {'cpu ms':>9} {'x/4N':>5} {'peak MB':>7} {'x/4N':>5} | "
            f"{'dense ms':>10} {'x/4N':>5} {'peak MB':>7} | {'dense/FLARE':>11} {'mem d/F':>7}")
TABLE_HEADER = _COLUMNS + "\n" + "-" * len(_COLUMNS)


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def progress_line(round_index: int, rounds: int, n: int, measurement: dict) -> str:
    """A line for ``scaling()``'s ``on_round``: FLARE is timed over every N before the table's rows come."""
    return f"  FLARE round {round_index + 1}/{rounds}  N={n:>9,}  {1e3 * measurement['seconds']:10,.1f} ms"


def table_row(r: dict) -> str:
    """One row of ``scaling()`` as a line under TABLE_HEADER."""
    dense_ms = _fmt(r["dense_ms"], ",.1f", f"({r['dense_skipped']})")
    return (f"{r['n']:>9,} | {r['flare_ms']:>9,.1f} {_fmt(r['flare_growth'], '.2f'):>5} {r['flare_cpu_ms']:>9,.1f} "
            f"{_fmt(r['flare_cpu_growth'], '.2f'):>5} {r['flare_peak_mb']:>7,.0f} "
            f"{_fmt(r['flare_memory_growth'], '.2f'):>5} | "
            f"{dense_ms:>10} {_fmt(r['dense_growth'], '.1f'):>5} {_fmt(r['dense_peak_mb'], ',.0f'):>7} | "
            f"{_fmt(r['speedup'], ',.1f'):>11} {_fmt(r['memory_ratio'], '.1f'):>7}")


def targets_lines(t: dict) -> list[str]:
    """The acceptance checks of ``targets()`` in words, one line each."""
    return [f"largest N run: {t['largest_n']:,}; FLARE growth per 4x N at most {_fmt(t['max_flare_growth'], '.2f')} "
            f"(target < {TARGET_GROWTH}): {'ok' if t['growth_ok'] else 'MISSED'}; in CPU time at most "
            f"{_fmt(t['max_flare_cpu_growth'], '.2f')}; geometric mean over the range "
            f"{_fmt(t['mean_flare_growth'], '.2f')}",
            f"largest N with dense attention: {t['largest_dense_n']:,}; FLARE faster by "
            f"{_fmt(t['speedup_at_largest_dense_n'], '.1f')}x (target >= {TARGET_SPEEDUP:g}x at >= "
            f"{TARGET_DENSE_N:,}): {'ok' if t['speedup_ok'] else 'MISSED'}"]


def plot(result: dict, path) -> None:
    """A PNG of ``scaling()``'s result: time and peak memory against N, log-log, with O(N) and O(N^2) guides.
    Needs matplotlib (imported here, so measuring does not)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cfg = result["rows"], result["config"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "ms", "forward time (ms)"), (axes[1], "peak_mb", "peak memory (MB)")):
        for name, color in (("flare", "tab:blue"), ("dense", "tab:red")):
            pts = [(r["n"], r[f"{name}_{key}"]) for r in rows if r[f"{name}_{key}"] is not None]
            if pts:
                ax.loglog(*zip(*pts), "o-", color=color,
                          label=f"FLARE (M={cfg['num_latents']})" if name == "flare" else "dense softmax attention")
        n0, y0 = rows[0]["n"], rows[0][f"flare_{key}"]
        ns = [r["n"] for r in rows]
        ax.loglog(ns, [y0 * n / n0 for n in ns], ":", color="gray", label="O(N)")
        dense = [r for r in rows if r[f"dense_{key}"] is not None]
        if key == "ms" and dense:
            d0 = dense[0]
            ax.loglog(ns[:len(dense) + 1], [d0["dense_ms"] * (n / d0["n"]) ** 2 for n in ns[:len(dense) + 1]], "--",
                      color="gray", label="O(N²)")
        ax.set_xlabel("tokens N")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"one layer forward, C={cfg['channel_dim']}, H={cfg['num_heads']}, batch {cfg['batch']}, "
                 f"float32, {cfg['device']}", fontsize=10)
    fig.tight_layout()
    atomic.write_file(path, lambda target: fig.savefig(target, dpi=120))
    plt.close(fig)
