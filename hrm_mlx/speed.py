"""Device-specific speed paths, behind one switch: ``HRM_MLX_SPEED=0`` runs the plain path everywhere.

A speed path changes how a result is computed, never what: each one is tested equal to its plain path.

- **Row groups on parallel CPU streams.** MLX's CPU backend runs each stream's kernels on one thread, and its
  element-wise kernels are single-threaded, so a small model leaves all cores but one idle however many BLAS
  threads it has. A step whose rows are independent (an ACT step, its loss and gradients) instead runs as one row
  group per core, each on its own stream; the BLAS runs one thread per stream (``runtime.configure``), so no
  BLAS thread spins while another process wants the core. The rows give the same values either way; gradients
  and losses are summed over groups, which rounds differently in the last bits.
- **SwiGLU with two projections on a CPU.** Gate and up as two matmuls give the fused SiLU·up kernel contiguous
  inputs, which the native JIT build vectorises; slices of one ``gate_up`` output are strided and run scalar.
  Same weights, same values; the input gradient is a sum of two matmuls instead of one.
- **Prefix pooling with its key and value projections folded into the queries.** The grid mixers' pooling
  (``layers.PrefixPool``) has a few queries (the puzzle-embedding prefix) over the whole sequence: scores
  q·(W_k x) are (W_k^T q)·x, and the values' projection can follow the weighted sum instead of preceding it, so
  the projections run on the prefix rows instead of every position (maze-cpu: 3.4 -> 1.1 ms per call with its
  gradients, ~7% of a training step). Same values up to the rounding of matmuls taken in another order.
"""

from __future__ import annotations

import os
from typing import Callable

import mlx.core as mx
from mlx.utils import tree_flatten, tree_map

SWITCH = "HRM_MLX_SPEED"
MIN_GROUP_ROWS = 8  # below this a row group's matmuls get too small to pay for another stream


def enabled() -> bool:
    """Whether the speed paths are on (the switch)."""
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "off", "false", "no")


def on_cpu() -> bool:
    return enabled() and mx.default_device() == mx.cpu


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def row_groups(batch_size: int) -> int:
    """How many row groups a step of ``batch_size`` rows runs as: one per core on a CPU, at least
    MIN_GROUP_ROWS rows each; 1 (the plain path) elsewhere."""
    if not on_cpu():
        return 1
    return max(1, min(cores(), batch_size // MIN_GROUP_ROWS))


_streams: list = []


def _streams_for(groups: int) -> list:
    while len(_streams) < groups:  # MLX keeps a stream's thread for the life of the process: make few, reuse
        _streams.append(mx.new_stream(mx.cpu))
    return _streams[:groups]


def by_row_groups(fn: Callable, groups: int, *trees):
    """``[fn(*rows of trees) for each group]``: the leading axis of every array in ``trees`` is cut into
    ``groups`` near-equal slices, and group i runs on CPU stream i (None leaves pass through). The caller
    combines the results (``join_rows``, ``sum_groups``)."""
    size = next(a for _, a in tree_flatten(trees) if a is not None).shape[0]
    bounds = [size * i // groups for i in range(groups + 1)]
    results = []
    for stream, lo, hi in zip(_streams_for(groups), bounds, bounds[1:]):
        with mx.stream(stream):
            rows = tree_map(lambda a, lo=lo, hi=hi: None if a is None else a[lo:hi], trees, is_leaf=_is_none)
            results.append(fn(*rows))
    return results


def _is_none(a) -> bool:
    return a is None


def join_rows(parts: list):
    """The per-group results of ``by_row_groups`` put back in row order (concatenated along the first axis)."""
    return tree_map(lambda *xs: None if xs[0] is None else mx.concatenate(xs), parts[0], *parts[1:],
                    is_leaf=_is_none)


def sum_groups(parts: list):
    """The per-group results added up (sums over rows: losses, metric counts, gradients)."""
    return tree_map(lambda *xs: None if xs[0] is None else sum(xs[1:], xs[0]), parts[0], *parts[1:],
                    is_leaf=_is_none)


def split_swiglu() -> bool:
    """Whether SwiGLU computes gate and up with two matmuls (see the module docstring)."""
    return on_cpu()


def fold_pool_projections() -> bool:
    """Whether prefix pooling applies its key and value projections on the queries' side (see the module
    docstring)."""
    return on_cpu()
