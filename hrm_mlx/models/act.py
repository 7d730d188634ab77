"""Adaptive computation time (ACT) around a recursive model, and the loss head; shared by HRM and TRM.

The carry persists across ACT steps: the model state, the step count, whether each row halted, and the data
each row is working on. At the start of a step, halted rows are reset and take the new batch's rows; rows still
thinking keep their old data. Evaluation halts only at ``halt_max_steps`` (so a batch stays in lockstep);
training also halts where the Q head prefers halting, subject to random exploration: HRM halts when
q_halt > q_continue and learns q_continue from a bootstrapped target computed by one more model call; TRM
(``no_ACT_continue``) halts when q_halt > 0 and has no Q-continue target, hence no extra model call.

A recursive model provides: ``initial_state(batch, seq_len)``, ``reset_state(mask, state)``, ``puzzle_rows(ids)``,
``model(state, inputs, puzzle_rows) -> (state, logits, q_halt, q_continue)`` and optionally
``no_ACT_continue`` (default False).
The carry is a plain dict of arrays so that it passes through ``mx.compile``.
"""

from __future__ import annotations

import mlx.core as mx

from hrm_mlx import speed
from hrm_mlx.data import IGNORE_LABEL_ID  # the label of cells without a target, as batches carry it

DATA_KEYS = ("inputs", "labels", "puzzle_identifiers")


def initial_carry(model, batch: dict) -> dict:
    """A carry in which every row is halted, so the first step loads the whole batch."""
    size, seq_len = batch["inputs"].shape
    return {
        "state": model.initial_state(size, seq_len),
        "steps": mx.zeros((size,), dtype=mx.int32),
        "halted": mx.ones((size,), dtype=mx.bool_),
        **{k: mx.zeros_like(batch[k]) for k in DATA_KEYS},
    }


def reset_halted(model, carry: dict, batch: dict) -> dict:
    """Restart the halted rows: initial state, step 0, and the new batch's data."""
    halted = carry["halted"]
    data = {k: mx.where(halted.reshape(-1, *([1] * (batch[k].ndim - 1))), batch[k], carry[k]) for k in DATA_KEYS}
    return {
        "state": model.reset_state(halted, carry["state"]),
        "steps": mx.where(halted, 0, carry["steps"]),
        "halted": halted,
        **data,
    }


def forward(model, carry: dict, puzzle_rows=None, *, training: bool = False, min_halt_steps=None,
            halt_max_steps: int | None = None) -> tuple[dict, dict]:
    """One ACT step on a carry whose halted rows were already reset. Returns (new carry, outputs).

    ``puzzle_rows`` defaults to the model's rows for the carry's puzzle ids; training passes them explicitly to
    take their gradient. ``min_halt_steps`` [B] is the exploration draw (see ``exploration``), training only.
    """
    max_steps = halt_max_steps or model.args.halt_max_steps
    if puzzle_rows is None:
        puzzle_rows = model.puzzle_rows(carry["puzzle_identifiers"])
    state, logits, q_halt, q_continue = model(carry["state"], carry["inputs"], puzzle_rows)
    outputs = {"logits": logits, "q_halt_logits": q_halt, "q_continue_logits": q_continue}

    steps = carry["steps"] + 1
    is_last = steps >= max_steps
    halted = is_last
    state = tuple(mx.stop_gradient(s) for s in state)
    if training and max_steps > 1:
        halted = (halted | halts(model, outputs)) & (steps >= min_halt_steps)
        if not getattr(model, "no_ACT_continue", False):
            # Bootstrapped target for q_continue: the value of the best action after one more step
            # (no replay buffer or target network; the many rows of a batch act as parallel environments).
            _, _, next_halt, next_continue = model(state, carry["inputs"], puzzle_rows)
            target = mx.sigmoid(mx.where(is_last, next_halt, mx.maximum(next_halt, next_continue)))
            outputs["target_q_continue"] = mx.stop_gradient(target)
    halted = mx.stop_gradient(halted)
    new_carry = {"state": state, "steps": steps, "halted": halted, **{k: carry[k] for k in DATA_KEYS}}
    return new_carry, outputs


def halts(model, outputs: dict) -> mx.array:
    """Whether each row's halt head chooses to halt (the one halting rule: training, evaluation and solving): q_halt
    > 0, i.e. sigmoid(q_halt) > 1/2, for models without a Q-continue value (TRM's default), q_halt > q_continue
    otherwise (HRM)."""
    if getattr(model, "no_ACT_continue", False):
        return outputs["q_halt_logits"] > 0
    return outputs["q_halt_logits"] > outputs["q_continue_logits"]


def exploration(batch_size: int, prob: float, halt_max_steps: int, key=None) -> mx.array:
    """Per row: with probability ``prob`` a minimum number of steps drawn uniformly from 2..halt_max_steps,
    else 0 (no minimum)."""
    k1, k2 = mx.random.split(key) if key is not None else (None, None)
    explore = mx.random.uniform(shape=(batch_size,), key=k1) < prob
    low_high = mx.random.randint(2, halt_max_steps + 1, (batch_size,), key=k2)
    return mx.where(explore, low_high, 0).astype(mx.int32)


# -- loss head ---------------------------------------------------------------------------------------------------

def stablemax_cross_entropy(logits: mx.array, labels: mx.array) -> mx.array:
    """Cross-entropy under stablemax, s(x) = x + 1 for x >= 0 and 1 / (1 - x) below: a softmax substitute with
    polynomial tails that avoids the overflow of exp for confident logits. Float32 (the official code uses
    float64, which Metal lacks; the difference is within float32 rounding of the result)."""
    x = logits.astype(mx.float32)
    # Each branch sees only its own side of 0: the unselected branch of a where still gets a zero cotangent, and
    # 1 / (1 - x) evaluated at a logit of exactly 1.0 would make that 0 * inf = NaN in float32 (the official
    # float64 code survives it). The official + 1e-30 is below float32 resolution next to 1 - x >= 1.
    s = mx.where(x < 0, 1.0 / (1.0 - mx.minimum(x, 0.0)), mx.maximum(x, 0.0) + 1.0)
    log_probs = mx.log(s) - mx.log(mx.sum(s, axis=-1, keepdims=True))
    return -_pick(log_probs, labels)


def softmax_cross_entropy(logits: mx.array, labels: mx.array) -> mx.array:
    x = logits.astype(mx.float32)
    return -_pick(x - mx.logsumexp(x, axis=-1, keepdims=True), labels)


def _pick(log_probs: mx.array, labels: mx.array) -> mx.array:
    valid = labels != IGNORE_LABEL_ID
    picked = mx.take_along_axis(log_probs, mx.where(valid, labels, 0)[..., None], axis=-1)[..., 0]
    return mx.where(valid, picked, 0.0)


LOSSES = {"stablemax_cross_entropy": stablemax_cross_entropy, "softmax_cross_entropy": softmax_cross_entropy}


def binary_cross_entropy_with_logits(logits: mx.array, targets: mx.array) -> mx.array:
    return mx.maximum(logits, 0) - logits * targets + mx.log1p(mx.exp(-mx.abs(logits)))


def loss_and_metrics(outputs: dict, carry: dict, loss_type: str) -> tuple[mx.array, dict]:
    """The official ACT loss: per-sequence mean token CE summed over rows, plus 0.5 * (Q-halt BCE against
    "the answer is exactly right" + Q-continue BCE against the bootstrapped target), both summed over rows
    (no Q-continue term when the step has no target: evaluation, or a model with ``no_ACT_continue``).
    Metrics are sums over the rows that halted this step (divide by ``count``)."""
    labels = carry["labels"]
    logits = outputs["logits"]
    mask = labels != IGNORE_LABEL_ID
    loss_counts = mask.sum(-1)
    divisor = mx.maximum(loss_counts, 1)[:, None]
    is_correct = mask & (mx.argmax(logits, axis=-1) == labels)
    seq_is_correct = is_correct.sum(-1) == loss_counts
    valid = carry["halted"] & (loss_counts > 0)

    q_halt = outputs["q_halt_logits"]
    metrics = {
        "count": valid.sum(),
        "accuracy": mx.where(valid, (is_correct.astype(mx.float32) / divisor).sum(-1), 0.0).sum(),
        "exact_accuracy": (valid & seq_is_correct).sum(),
        "q_halt_accuracy": (valid & ((q_halt >= 0) == seq_is_correct)).sum(),
        "steps": mx.where(valid, carry["steps"], 0).sum(),
    }
    lm_loss = (LOSSES[loss_type](logits, labels) / divisor).sum()
    q_halt_loss = binary_cross_entropy_with_logits(q_halt, seq_is_correct.astype(q_halt.dtype)).sum()
    total = lm_loss + 0.5 * q_halt_loss
    metrics.update(lm_loss=mx.stop_gradient(lm_loss), q_halt_loss=mx.stop_gradient(q_halt_loss))
    if "target_q_continue" in outputs:
        q_continue_loss = binary_cross_entropy_with_logits(
            outputs["q_continue_logits"], outputs["target_q_continue"]).sum()
        total = total + 0.5 * q_continue_loss
        metrics["q_continue_loss"] = mx.stop_gradient(q_continue_loss)
    return total, metrics


def make_eval_step(model, *, halt_max_steps: int | None = None, compiled: bool = True):
    """``step(carry, batch) -> (carry, outputs, loss, metrics)``: reset halted rows, one ACT step, the loss.
    Compiled, the element-wise work of the whole step is fused into few kernels."""

    def rows_step(carry, batch):
        carry = reset_halted(model, carry, batch)
        carry, outputs = forward(model, carry, halt_max_steps=halt_max_steps)
        loss, metrics = loss_and_metrics(outputs, carry, model.args.loss_type)
        return (carry, outputs), (loss, metrics)

    def step(carry, batch):
        groups = speed.row_groups(batch["inputs"].shape[0])
        if groups > 1:  # rows are independent: one row group per core (hrm_mlx.speed)
            parts = speed.by_row_groups(rows_step, groups, carry, batch)
            (carry, outputs), (loss, metrics) = (speed.join_rows([p[0] for p in parts]),
                                                 speed.sum_groups([p[1] for p in parts]))
        else:
            (carry, outputs), (loss, metrics) = rows_step(carry, batch)
        return carry, outputs, loss, metrics

    return mx.compile(step, inputs=model.state) if compiled else step


def training_loss(model, carry: dict, puzzle_rows, min_halt_steps: mx.array):
    """Loss of one training ACT step on a carry whose halted rows were already reset, as a function of the
    model's trainable parameters and of the batch's puzzle-embedding rows (differentiate this).
    Returns (loss, (new carry, outputs, metrics))."""
    new_carry, outputs = forward(model, carry, puzzle_rows, training=True, min_halt_steps=min_halt_steps)
    loss, metrics = loss_and_metrics(outputs, new_carry, model.args.loss_type)
    return loss, (new_carry, outputs, metrics)
