"""Collectives of a data-parallel run (``mlx.launch``): sums, gathers and rank 0's values on every rank."""

from __future__ import annotations

import json
import math

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten


def all_sum_tree(tree, group):
    """Sum a tree of float arrays over the ranks with one all_sum of their concatenation."""
    flat = tree_flatten(tree)
    if not flat:
        return tree
    keys = [k for k, _ in flat]
    shapes = [v.shape for _, v in flat]
    dtypes = [v.dtype for _, v in flat]
    joined = mx.concatenate([v.astype(mx.float32).reshape(-1) for _, v in flat])
    summed = mx.distributed.all_sum(joined, group=group)
    out, offset = [], 0
    for key, shape, dtype in zip(keys, shapes, dtypes):
        size = math.prod(shape)
        out.append((key, summed[offset:offset + size].reshape(shape).astype(dtype)))
        offset += size
    return tree_unflatten(out)


def gather(x: mx.array, group) -> mx.array:
    if group.size() == 1:
        return x
    dtype = x.dtype
    wide = mx.int32 if (dtype == mx.bool_ or mx.issubdtype(dtype, mx.integer)) else mx.float32
    return mx.distributed.all_gather(x.astype(wide), group=group).astype(dtype)


def broadcast(x: mx.array, group) -> mx.array:
    """Rank 0's value of ``x`` on every rank (others pass arrays of the same shape)."""
    if group.size() == 1:
        return x
    dtype = x.dtype
    wide = mx.int32 if (dtype == mx.bool_ or mx.issubdtype(dtype, mx.integer)) else mx.float32
    mine = x.astype(wide) if group.rank() == 0 else mx.zeros(x.shape, wide)
    out = mx.distributed.all_sum(mine, group=group).astype(dtype)
    mx.eval(out)  # collectives outside a compiled graph run one at a time, in the same order on every rank
    return out


def gather_now(x: mx.array, group) -> mx.array:
    out = gather(x, group)
    mx.eval(out)
    return out


def broadcast_json(obj, group):
    if group.size() == 1:
        return obj
    blob = json.dumps(obj).encode() if group.rank() == 0 else b""
    length = int(broadcast(mx.array(len(blob), dtype=mx.int32), group).item())
    raw = np.frombuffer(blob, dtype=np.uint8) if group.rank() == 0 else np.zeros(length, np.uint8)
    out = np.array(broadcast(mx.array(raw.astype(np.int32)), group)).astype(np.uint8)
    return json.loads(out.tobytes().decode())
