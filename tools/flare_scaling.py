"""FLARE vs dense attention: forward time and peak memory of one layer for N = 1k ... 1M tokens.

Prints a table as the measurements come in (hrm_mlx.flare_bench.scaling) and saves a log-log plot of time and
memory against N. Needs matplotlib (the ``examples`` extra).

    python tools/flare_scaling.py                          # C=128, H=8, M=128, N = 1k ... 1M
    python tools/flare_scaling.py --max-n 65536 --out /tmp/flare.png --json /tmp/flare.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import hrm_mlx  # noqa: F401  (first: preloads the fast BLAS before mlx.core)
from hrm_mlx import flare_bench


def fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


HEADER = (f"{'N':>9} | {'FLARE ms':>9} {'x/4N':>5} {'cpu ms':>9} {'x/4N':>5} {'peak MB':>7} {'x/4N':>5} | "
          f"{'dense ms':>10} {'x/4N':>5} {'peak MB':>7} | {'dense/FLARE':>11} {'mem d/F':>7}")


def row_line(r: dict) -> str:
    dense_ms = fmt(r["dense_ms"], ",.1f", f"({r['dense_skipped']})")
    return (f"{r['n']:>9,} | {r['flare_ms']:>9,.1f} {fmt(r['flare_growth'], '.2f'):>5} {r['flare_cpu_ms']:>9,.1f} "
            f"{fmt(r['flare_cpu_growth'], '.2f'):>5} {r['flare_peak_mb']:>7,.0f} "
            f"{fmt(r['flare_memory_growth'], '.2f'):>5} | "
            f"{dense_ms:>10} {fmt(r['dense_growth'], '.1f'):>5} {fmt(r['dense_peak_mb'], ',.0f'):>7} | "
            f"{fmt(r['speedup'], ',.1f'):>11} {fmt(r['memory_ratio'], '.1f'):>7}")


def plot(result: dict, path: Path) -> None:
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
    fig.savefig(path, dpi=120)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--min-n", type=int, default=1024)
    p.add_argument("--max-n", type=int, default=1 << 20)
    p.add_argument("--channel-dim", type=int, default=128)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--latents", type=int, default=128)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="timed calls per N (the fastest is shown)")
    p.add_argument("--rounds", type=int, default=2, help="passes over all N for FLARE (the fastest is kept)")
    p.add_argument("--budget", type=float, default=30.0, help="seconds of timed calls per N before repeats stop")
    p.add_argument("--no-dense", action="store_true", help="time FLARE only")
    p.add_argument("--dense-max-n", type=int, default=None, help="largest N for dense attention")
    p.add_argument("--dense-time-limit", type=float, default=180.0, help="seconds a dense call may take (estimated)")
    p.add_argument("--out", type=Path, default=Path("flare_scaling.png"), help="log-log plot (PNG)")
    p.add_argument("--json", type=Path, default=None, help="also write the raw result as JSON")
    args = p.parse_args()

    ns, n = [], args.min_n
    while n <= args.max_n:
        ns.append(n)
        n *= 4
    print(f"FLARE layer (C={args.channel_dim}, H={args.heads}, M={args.latents}, 3-layer K/V MLPs) vs dense attention "
          f"(QKV + SDPA + out), batch {args.batch}, float32.\nms: wall time of the fastest of --repeats calls; "
          f"cpu ms: process CPU time of that call (all threads); x/4N: growth per 4x tokens; "
          f"peak MB: everything live during the call.")
    result = flare_bench.scaling(tuple(ns), channel_dim=args.channel_dim, num_heads=args.heads,
                                 num_latents=args.latents, batch=args.batch, repeats=args.repeats, budget_s=args.budget,
                                 rounds=args.rounds, on_round=lambda r, n, f: print(
                                     f"  FLARE round {r + 1}/{args.rounds}  N={n:>9,}  {1e3 * f['seconds']:10,.1f} ms",
                                     flush=True),
                                 dense=not args.no_dense, dense_max_n=args.dense_max_n,
                                 dense_time_limit=args.dense_time_limit,
                                 on_row=lambda r: print(("\n" + HEADER + "\n" + "-" * len(HEADER) + "\n"
                                                         if r["n"] == ns[0] else "") + row_line(r), flush=True))
    t = result["targets"]
    print(f"\nlargest N run: {t['largest_n']:,}; FLARE growth per 4x N at most {fmt(t['max_flare_growth'], '.2f')} "
          f"(target < {flare_bench.TARGET_GROWTH}): {'ok' if t['growth_ok'] else 'MISSED'}; in CPU time at most "
          f"{fmt(t['max_flare_cpu_growth'], '.2f')}; geometric mean over the range "
          f"{fmt(t['mean_flare_growth'], '.2f')}")
    print(f"largest N with dense attention: {t['largest_dense_n']:,}; FLARE faster by "
          f"{fmt(t['speedup_at_largest_dense_n'], '.1f')}x (target >= {flare_bench.TARGET_SPEEDUP:g}x at >= "
          f"{flare_bench.TARGET_DENSE_N:,}): {'ok' if t['speedup_ok'] else 'MISSED'}")
    plot(result, args.out)
    print(f"plot: {args.out}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if t["growth_ok"] and t["speedup_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
