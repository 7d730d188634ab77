"""The official optimisers and learning-rate schedule of HRM/TRM training, in MLX.

- ``AdamATan2`` (imoneoi/adam-atan2, CUDA-only upstream) for the model weights: Adam whose update divides with
  atan2 instead of an epsilon, with decoupled weight decay applied first. Per element, step t from 1:

      p <- p * (1 - lr * wd)
      m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
      p <- p - lr / (1 - b1^t) * atan2(m, sqrt(v) / sqrt(1 - b2^t))

- ``sign_sgd_rows`` for the sparse puzzle embeddings: only the rows present in the batch change; gradients of
  rows sharing an id are summed first; ``w <- w (1 - lr wd) - lr sign(g)``.
- ``lr_at`` the official schedule: linear warmup from 0, then cosine down to ``lr_min_ratio`` of the base.
- ``ema_update``: exponential moving average of the weights (TRM).
"""

from __future__ import annotations

import math

import mlx.core as mx
from mlx.optimizers import Optimizer
from mlx.utils import tree_map


class AdamATan2(Optimizer):
    """AdamATan2 as an MLX optimizer (use like ``mlx.optimizers.AdamW``). No epsilon and no scale constants:
    atan2(m, d) ~ m / d where |m| << d, and stays bounded (|update| <= lr * pi / 2 / (1 - b1^t)) where d -> 0."""

    def __init__(self, learning_rate, betas=(0.9, 0.95), weight_decay: float = 0.0):
        super().__init__()
        self._maybe_schedule("learning_rate", learning_rate)
        self.betas = tuple(betas)
        self.weight_decay = weight_decay

    def init_single(self, parameter: mx.array, state: dict):
        state["m"] = mx.zeros_like(parameter)
        state["v"] = mx.zeros_like(parameter)

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        lr = self.learning_rate.astype(gradient.dtype)
        b1, b2 = self.betas
        step = self.step.astype(mx.float32)  # already incremented: 1 on the first update
        parameter = parameter * (1 - lr * self.weight_decay)
        m = b1 * state["m"] + (1 - b1) * gradient
        v = b2 * state["v"] + (1 - b2) * mx.square(gradient)
        state["m"], state["v"] = m, v
        step_size = (lr / (1 - b1**step)).astype(gradient.dtype)
        denom = (mx.sqrt(v) / mx.sqrt(1 - b2**step)).astype(gradient.dtype)
        return parameter - step_size * mx.arctan2(m, denom)


def sum_rows_by_id(ids: mx.array, grads: mx.array) -> mx.array:
    """For each row i, the sum of the gradients of every row j with ids[j] == ids[i] ([N, D]; N = batch rows,
    small, so an [N, N] match matrix is cheaper than scattering into the whole table)."""
    same = (ids[:, None] == ids[None, :]).astype(grads.dtype)
    return same @ grads


def sign_sgd_rows(table: mx.array, ids: mx.array, grads: mx.array, lr, weight_decay: float) -> mx.array:
    """The official sparse SignSGD step (CastedSparseEmbeddingSignSGD_Distributed): rows ``ids`` of ``table``
    with per-row gradients ``grads`` [N, D] (several rows may share an id: their gradients are summed).
    Rows absent from ``ids`` are untouched (no decay either). Returns the new table."""
    g = sum_rows_by_id(ids, grads.astype(mx.float32))
    rows = table[ids]
    new_rows = rows * (1 - lr * weight_decay) - lr * mx.sign(g)
    # Rows with the same id get the same value, so the order duplicates are written in does not matter.
    table[ids] = new_rows.astype(table.dtype)
    return table


def lr_at(step: int, base_lr: float, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """The official cosine_schedule_with_warmup_lr_lambda; ``step`` counts optimizer updates from 1."""
    if step < warmup_steps:
        return base_lr * float(step) / float(max(1, warmup_steps))
    progress = float(step - warmup_steps) / float(max(1, total_steps - warmup_steps))
    return base_lr * (min_ratio + max(0.0, (1 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))))


def ema_update(shadow, params, rate: float):
    """shadow <- rate * shadow + (1 - rate) * params, over matching trees."""
    return tree_map(lambda s, p: rate * s + (1 - rate) * p, shadow, params)
