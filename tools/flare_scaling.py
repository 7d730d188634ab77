"""FLARE vs dense attention: forward time and peak memory of one layer for N = 1k ... 1M tokens.

Prints a table as the measurements come in (hrm_mlx.flare_bench.scaling) and saves a log-log plot of time and
memory against N. Needs matplotlib (the ``examples`` extra).

    python tools/flare_scaling.py                          # C=128, H=8, M=128, N = 1k ... 1M
    python tools/flare_scaling.py --max-n 65536 --out /tmp/flare.png --json /tmp/flare.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import hrm_mlx  # noqa: F401  (first: preloads the fast BLAS before mlx.core)
from hrm_mlx import atomic, flare_bench


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

    ns = flare_bench.token_counts(args.max_n, args.min_n)
    print(f"FLARE layer (C={args.channel_dim}, H={args.heads}, M={args.latents}, 3-layer K/V MLPs) vs dense attention "
          f"(QKV + SDPA + out), batch {args.batch}, float32.\n{flare_bench.LEGEND}")

    def print_row(row: dict) -> None:
        if row["n"] == ns[0]:  # the rows follow the FLARE rounds' progress lines
            print("\n" + flare_bench.TABLE_HEADER)
        print(flare_bench.table_row(row), flush=True)

    result = flare_bench.scaling(ns, channel_dim=args.channel_dim, num_heads=args.heads,
                                 num_latents=args.latents, batch=args.batch, repeats=args.repeats, budget_s=args.budget,
                                 rounds=args.rounds, on_round=lambda r, n, f: print(
                                     flare_bench.progress_line(r, args.rounds, n, f), flush=True),
                                 dense=not args.no_dense, dense_max_n=args.dense_max_n,
                                 dense_time_limit=args.dense_time_limit,
                                 on_row=print_row)
    t = result["targets"]
    print("\n" + "\n".join(flare_bench.targets_lines(t)))
    flare_bench.plot(result, args.out)
    print(f"plot: {args.out}")
    if args.json:
        atomic.write_json(args.json, result)
    return 0 if t["growth_ok"] and t["speedup_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
