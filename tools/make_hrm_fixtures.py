"""Generate HRM parity fixtures from the official PyTorch implementation (dev-only tool).

This script is NOT part of the hrm_mlx package and never imports it. It needs PyTorch (CPU), numpy,
safetensors and pydantic, plus a checkout of the official code (github.com/sapientinc/HRM), which is imported
from the path given with --official and never copied into this repository:

    /work/venv-torch/bin/python tools/make_hrm_fixtures.py --official /tmp/hrm_official --out tests/fixtures/hrm

FlashAttention is replaced by a small shim (modules ``flash_attn_interface`` and ``flash_attn`` injected into
sys.modules) that computes the same non-causal softmax attention with torch's scaled_dot_product_attention
(default scale 1/sqrt(head_dim)). Everything runs on CPU in float32 (forward_dtype "float32"). All randomness is
seeded, so re-running the script reproduces the files (up to CPU floating-point nondeterminism, which was not
observed).

Fixture format
==============

One directory per case, ``<out>/<case>/``, with case in {"rope", "learned"}:

| case    | pos_encodings | puzzle_emb_ndim | P | H_cycles | L_cycles | H_layers | L_layers | halt_max_steps | loss_type               |
|---------|---------------|-----------------|---|----------|----------|----------|----------|----------------|-------------------------|
| rope    | rope          | 64              | 1 | 2        | 2        | 2        | 2        | 4              | stablemax_cross_entropy |
| learned | learned       | 96              | 2 | 3        | 2        | 1        | 2        | 5              | softmax_cross_entropy   |

Common to both: batch_size B = 4, seq_len S = 16, vocab_size V = 11, hidden_size D = 64, num_heads 4
(head_dim 16), expansion 4 (SwiGLU width I = 256), num_puzzle_identifiers 6, halt_exploration_prob 0.5,
rms_norm_eps 1e-5, rope_theta 10000, forward_dtype float32.
P = ceil(puzzle_emb_ndim / D) is the number of puzzle-embedding positions prepended to the sequence
(for "learned" the 96-dim puzzle embedding is zero-padded to 2*64 and becomes 2 positions). L = S + P.
T_eval = halt_max_steps; T_train = 8.

config.json
    The official HierarchicalReasoningModel_ACTV1Config fields, as dumped by the official pydantic class
    (batch_size, seq_len, puzzle_emb_ndim, num_puzzle_identifiers, vocab_size, H_cycles, L_cycles, H_layers,
    L_layers, hidden_size, expansion (float), num_heads, pos_encodings, rms_norm_eps, rope_theta,
    halt_max_steps, halt_exploration_prob, forward_dtype), plus "loss_type" (the ACTLossHead loss function name).

weights.safetensors
    The inner model's state dict (HierarchicalReasoningModel_ACTV1_Inner.state_dict()), official key names
    without any prefix, all float32:
        embed_tokens.embedding_weight                [V, D]
        embed_pos.embedding_weight                   [L, D]        (learned case only)
        lm_head.weight                               [V, D]
        q_head.weight                                [2, D]        row 0 -> q_halt, row 1 -> q_continue
        q_head.bias                                  [2]
        puzzle_emb.weights                           [num_puzzle_identifiers, puzzle_emb_ndim]
        H_init, L_init                               [D]
        {H,L}_level.layers.{i}.self_attn.qkv_proj.weight   [3D, D]
        {H,L}_level.layers.{i}.self_attn.o_proj.weight     [D, D]
        {H,L}_level.layers.{i}.mlp.gate_up_proj.weight     [2I, D]
        {H,L}_level.layers.{i}.mlp.down_proj.weight        [D, I]
    Weights come from the official init under torch.manual_seed(case seed); afterwards q_head.weight,
    q_head.bias and puzzle_emb.weights (all rows, including the blank id 0) are overwritten with random
    non-trivial values, because the official zeros / -5 would hide bugs (_perturb_init:
    q_head.weight ~ N(0, (1.5/sqrt(D))^2), q_head.bias = [0.3, -0.2] + N(0, 0.2^2),
    puzzle_emb.weights ~ N(0, 1/D)). There are no RoPE tables (non-persistent buffers) and no
    local_weights/local_ids.

checkpoint_f32, checkpoint_bf16
    torch.save (default zip/pickle format) of the state dict exactly as the official pretrain.py saves it:
    taken from torch.compile(ACTLossHead(HierarchicalReasoningModel_ACTV1(cfg), loss_type)) (compiled wrapper
    never executed), so every key is "_orig_mod.model.inner.<name>" with <name> as in weights.safetensors.
    checkpoint_f32 holds the float32 values of weights.safetensors; checkpoint_bf16 has every floating tensor
    cast to torch.bfloat16 (round-to-nearest-even of the f32 values).

eval.npz  (model.eval(), torch.no_grad, official ACTLossHead with the case's loss_type)
    One fixed batch; carry = initial_carry(batch) (all rows halted); then T = halt_max_steps ACT steps, each
    called with the same batch, until carry.halted.all() (in eval mode halting is steps >= halt_max_steps,
    so every row runs all T steps; the first step resets all rows to H_init/L_init).
        inputs               int32  [B, S]      tokens in 1..V-1
        labels               int32  [B, S]      -100 = ignored. Row 0 = the model's own argmax prediction at the
                                                final step (some positions -100) -> exactly correct; row 1 =
                                                random, with -100s; row 2 = labels equal the inputs, with
                                                -100s; row 3 = the final-step argmax except one position
                                                changed (a near miss, not exactly correct)
        puzzle_identifiers   int32  [B]         in 1..num_puzzle_identifiers-1
        z_H, z_L             float32 [T, B, L, D]   new inner carry after step t
        logits               float32 [T, B, S, V]   (puzzle positions already dropped)
        q_halt_logits        float32 [T, B]
        q_continue_logits    float32 [T, B]
        halted               bool   [T, B]      carry.halted after step t
        steps                int32  [T, B]      carry.steps after step t (= t+1)
        loss                 float64 [T]        total loss returned by ACTLossHead
                                                (lm_loss + 0.5 * q_halt_loss in eval)
        metric_<name>        [T]   for name in count, exact_accuracy, q_halt_accuracy, steps (int64) and
                                   accuracy, lm_loss, q_halt_loss (float64); the ACTLossHead metric values
                                   (sums over the batch, not divided by count). metric_count is 0 until the
                                   last step because metrics only count halted rows.

train.npz  (model.train(), official ACTLossHead, T = 8 ACT steps)
    carry = initial_carry(batch_0); step t calls the loss head with a NEW random batch_t. Only rows with
    carry.halted (before step t) take their data from batch_t (all rows at t = 0; afterwards the rows with
    halted[t-1] == True); other rows keep their current data and inner state. Halting in training is
    (steps >= halt_max_steps or q_halt > q_continue) and steps >= min_halt_steps, where min_halt_steps is the
    exploration draw recorded below. Values recorded with gradients enabled, in the same pass as grads.
        batch_inputs, batch_labels            int32 [T, B, S]   the batch handed in at step t
        batch_puzzle_identifiers              int32 [T, B]
        current_inputs, current_labels        int32 [T, B, S]   carry.current_data after step t (the data the
        current_puzzle_identifiers            int32 [T, B]      model actually used at step t)
        min_halt_steps        int32 [T, B]   (torch.rand_like(q_halt) < halt_exploration_prob) *
                                             torch.randint_like(steps, 2, halt_max_steps + 1), as drawn by the
                                             official code at step t (0 = no minimum)
        z_H, z_L              float32 [T, B, L, D]   new inner carry after step t
        logits                float32 [T, B, S, V]
        q_halt_logits, q_continue_logits  float32 [T, B]
        target_q_continue     float32 [T, B]   sigmoid(next_q_halt if steps >= halt_max_steps else
                                             max(next_q_halt, next_q_continue)), next_* from a second inner
                                             forward on the new carry and the same current data
        halted                bool  [T, B]     carry.halted after step t
        steps                 int32 [T, B]     carry.steps after step t (1 for rows reset at step t)
        loss                  float64 [T]      total = lm_loss + 0.5 * (q_halt_loss + q_continue_loss),
                                               unscaled (pretrain.py multiplies by 1/global_batch_size
                                               before backward; the fixture does not)
        metric_<name>         [T]   as in eval.npz plus q_continue_loss (float64)
        grad_steps            int32 [G]        the steps t whose gradients are stored in grads.safetensors
    Labels of train batches: random tokens in 1..V-1 with ~25% set to -100, except (a) for about half of the
    rows that are consumed at step t, the labels are the model's own argmax prediction at the step where that
    row halts (or at step T-1), so exact/q_halt accuracy are non-trivial; (b) other rows use labels = inputs
    (with -100s); (c) row 3 of batch 2 is entirely -100 (loss_count 0; never counted in the metrics).
    Logits and halting do not depend on labels, so these labels were chosen from a first, label-independent
    dry run of the same rollout.

grads.safetensors
    For each stored step t (train.npz "grad_steps"): gradients of the unscaled total loss of step t, computed
    with loss.backward() on that step alone (all grads zeroed before each step; weights are never updated).
    float32 keys:
        step{t}.{name}                         grad of every inner-model parameter, {name} as in
                                               weights.safetensors (parameters only: not H_init, L_init,
                                               puzzle_emb.weights, which are buffers)
        step{t}.puzzle_emb.local_weights       [B, puzzle_emb_ndim] grad of the sparse-embedding training buffer
                                               (row b = gradient w.r.t. the puzzle embedding of row b of the
                                               current data at step t)
    Stored steps by default (--grad-steps case): rope 0 and 3, learned 0 and 4, i.e. step 0 (every row fresh
    from H_init/L_init) and a later step with mixed rows (carried state, a freshly reset row and rows reaching
    halt_max_steps). Only two steps are kept to bound the fixture size (~1 MB per step and case);
    --grad-steps all writes all 8. The safetensors metadata holds {"grad_steps": "0,3"} (comma-separated).

Deviation from running the official code verbatim: the official softmax_cross_entropy calls .view() on
logits.to(float32); with forward_dtype float32 that cast is a no-op and the sliced logits are not viewable, so
the loss head is given logits.contiguous() (same values and gradients; with bfloat16, as in the official runs,
the cast itself makes the contiguous copy). Nothing else is changed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

IGNORE = -100
T_TRAIN = 8

BASE_CONFIG = dict(
    batch_size=4,
    seq_len=16,
    vocab_size=11,
    hidden_size=64,
    num_heads=4,
    expansion=4,
    num_puzzle_identifiers=6,
    halt_exploration_prob=0.5,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    forward_dtype="float32",
)

CASES = {
    "rope": dict(
        config=dict(BASE_CONFIG, pos_encodings="rope", puzzle_emb_ndim=64, H_cycles=2, L_cycles=2,
                    H_layers=2, L_layers=2, halt_max_steps=4),
        loss_type="stablemax_cross_entropy",
        seed=1234,
        grad_steps=(0, 3),
    ),
    "learned": dict(
        config=dict(BASE_CONFIG, pos_encodings="learned", puzzle_emb_ndim=96, H_cycles=3, L_cycles=2,
                    H_layers=1, L_layers=2, halt_max_steps=5),
        loss_type="softmax_cross_entropy",
        seed=5678,
        grad_steps=(0, 4),
    ),
}

METRICS_INT = ("count", "exact_accuracy", "q_halt_accuracy", "steps")
METRICS_FLOAT = ("accuracy", "lm_loss", "q_halt_loss", "q_continue_loss")


# ----------------------------------------------------------------------------------------------------------
# Official code import (with a FlashAttention stand-in)

def _sdpa_flash_attn_func(q, k, v, causal=False, **_unused):
    """FlashAttention-compatible call: q, k, v are [batch, seq, heads, head_dim]; output has the same layout."""
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=causal)
    return out.transpose(1, 2).contiguous()


def load_official(official_dir: Path):
    for mod_name in ("flash_attn_interface", "flash_attn"):
        shim = types.ModuleType(mod_name)
        shim.flash_attn_func = _sdpa_flash_attn_func
        sys.modules[mod_name] = shim
    sys.path.insert(0, str(official_dir.resolve()))
    hrm = importlib.import_module("models.hrm.hrm_act_v1")
    losses = importlib.import_module("models.losses")
    return hrm, losses


# ----------------------------------------------------------------------------------------------------------
# Helpers

def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


class ExplorationRecorder:
    """Wraps torch.rand_like / torch.randint_like (used only by the ACT exploration) and records their results."""

    def __init__(self):
        self.rand = []
        self.randint = []

    @contextlib.contextmanager
    def active(self):
        orig_rand, orig_randint = torch.rand_like, torch.randint_like

        def rand_like(*a, **k):
            r = orig_rand(*a, **k)
            self.rand.append(r.clone())
            return r

        def randint_like(*a, **k):
            r = orig_randint(*a, **k)
            self.randint.append(r.clone())
            return r

        torch.rand_like, torch.randint_like = rand_like, randint_like
        try:
            yield self
        finally:
            torch.rand_like, torch.randint_like = orig_rand, orig_randint

    def pop_min_halt_steps(self, prob: float) -> torch.Tensor:
        assert len(self.rand) == 1 and len(self.randint) == 1, (len(self.rand), len(self.randint))
        r, ri = self.rand.pop(), self.randint.pop()
        return ((r < prob) * ri).to(torch.int32)


def _perturb_init(inner, cfg: dict, seed: int) -> None:
    """Replace the official zero/-5 q_head init and zero puzzle table with random values."""
    g = torch.Generator().manual_seed(seed)
    d = cfg["hidden_size"]
    with torch.no_grad():
        inner.q_head.weight.copy_(torch.randn(inner.q_head.weight.shape, generator=g) * (1.5 / math.sqrt(d)))
        inner.q_head.bias.copy_(torch.tensor([0.3, -0.2]) + 0.2 * torch.randn(2, generator=g))
        w = inner.puzzle_emb.weights
        w.copy_(torch.randn(w.shape, generator=g) * (1.0 / math.sqrt(d)))


def _random_labels(rng: np.random.RandomState, shape, vocab: int, p_ignore: float = 0.25) -> np.ndarray:
    lab = rng.randint(1, vocab, size=shape).astype(np.int32)
    lab[rng.rand(*shape) < p_ignore] = IGNORE
    return lab


def _mask_some(rng: np.random.RandomState, lab: np.ndarray, p_ignore: float = 0.25) -> np.ndarray:
    lab = lab.astype(np.int32).copy()
    lab[rng.rand(*lab.shape) < p_ignore] = IGNORE
    return lab


def _to_batch(inputs, labels, pids):
    return {
        "inputs": torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.int32)),
        "labels": torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int32)),
        "puzzle_identifiers": torch.from_numpy(np.ascontiguousarray(pids, dtype=np.int32)),
    }


def _metrics_to_record(rec: dict, metrics: dict, names) -> None:
    for name in names:
        if name in metrics:
            rec.setdefault(f"metric_{name}", []).append(float(metrics[name]) if name in METRICS_FLOAT
                                                        else int(metrics[name]))


def _stack(rec: dict) -> dict:
    out = {}
    for k, v in rec.items():
        if k.startswith("metric_"):
            name = k[len("metric_"):]
            out[k] = np.asarray(v, dtype=np.int64 if name in METRICS_INT else np.float64)
        elif k == "loss":
            out[k] = np.asarray(v, dtype=np.float64)
        else:
            out[k] = np.stack(v)
    return out


# ----------------------------------------------------------------------------------------------------------
# Rollouts

def eval_rollout(head, batch: dict, halt_max_steps: int) -> dict:
    head.eval()
    rec: dict = {}
    with torch.no_grad():
        carry = head.initial_carry(batch)
        for _ in range(halt_max_steps):
            carry, loss, metrics, outputs, all_finish = head(
                return_keys=["logits", "q_halt_logits", "q_continue_logits"], carry=carry, batch=batch)
            rec.setdefault("z_H", []).append(_np(carry.inner_carry.z_H))
            rec.setdefault("z_L", []).append(_np(carry.inner_carry.z_L))
            rec.setdefault("logits", []).append(_np(outputs["logits"]))
            rec.setdefault("q_halt_logits", []).append(_np(outputs["q_halt_logits"]))
            rec.setdefault("q_continue_logits", []).append(_np(outputs["q_continue_logits"]))
            rec.setdefault("halted", []).append(_np(carry.halted).astype(bool))
            rec.setdefault("steps", []).append(_np(carry.steps).astype(np.int32))
            rec.setdefault("loss", []).append(loss.item())
            _metrics_to_record(rec, metrics, METRICS_INT + METRICS_FLOAT)
        assert bool(all_finish), "eval rollout did not finish within halt_max_steps"
    return _stack(rec)


def train_rollout(head, inner, batches: list, cfg: dict, torch_seed: int, with_grads: bool, grad_steps) -> tuple:
    head.train()
    rec: dict = {}
    grads: dict = {}
    recorder = ExplorationRecorder()
    params = dict(inner.named_parameters())
    local_w = inner.puzzle_emb.local_weights
    torch.manual_seed(torch_seed)
    carry = head.initial_carry(batches[0])
    with recorder.active(), torch.set_grad_enabled(with_grads):
        for t, batch in enumerate(batches):
            head.zero_grad(set_to_none=True)
            local_w.grad = None
            carry, loss, metrics, outputs, _ = head(
                return_keys=["logits", "q_halt_logits", "q_continue_logits", "target_q_continue"],
                carry=carry, batch=batch)
            if with_grads:
                loss.backward()
                if t in grad_steps:
                    for name, p in params.items():
                        assert p.grad is not None, name
                        grads[f"step{t}.{name}"] = p.grad.detach().to(torch.float32).clone()
                    assert local_w.grad is not None
                    grads[f"step{t}.puzzle_emb.local_weights"] = local_w.grad.detach().to(torch.float32).clone()
            rec.setdefault("min_halt_steps", []).append(_np(recorder.pop_min_halt_steps(cfg["halt_exploration_prob"])))
            for k in ("inputs", "labels", "puzzle_identifiers"):
                rec.setdefault(f"batch_{k}", []).append(_np(batch[k]).astype(np.int32))
                rec.setdefault(f"current_{k}", []).append(_np(carry.current_data[k]).astype(np.int32))
            rec.setdefault("z_H", []).append(_np(carry.inner_carry.z_H))
            rec.setdefault("z_L", []).append(_np(carry.inner_carry.z_L))
            for k in ("logits", "q_halt_logits", "q_continue_logits", "target_q_continue"):
                rec.setdefault(k, []).append(_np(outputs[k]))
            rec.setdefault("halted", []).append(_np(carry.halted).astype(bool))
            rec.setdefault("steps", []).append(_np(carry.steps).astype(np.int32))
            rec.setdefault("loss", []).append(loss.item())
            _metrics_to_record(rec, metrics, METRICS_INT + METRICS_FLOAT)
    head.zero_grad(set_to_none=True)
    local_w.grad = None
    return _stack(rec), grads


# ----------------------------------------------------------------------------------------------------------
# Case generation

def make_eval_batch(rng, cfg, dry_logits_last: np.ndarray | None):
    B, S, V, N = cfg["batch_size"], cfg["seq_len"], cfg["vocab_size"], cfg["num_puzzle_identifiers"]
    inputs = rng.randint(1, V, size=(B, S)).astype(np.int32)
    pids = rng.randint(1, N, size=(B,)).astype(np.int32)
    labels = _random_labels(rng, (B, S), V)
    labels[2] = _mask_some(rng, inputs[2])
    mask0 = rng.rand(S) < 0.25
    if dry_logits_last is not None:
        pred = dry_logits_last.argmax(-1).astype(np.int32)
        labels[0] = np.where(mask0, IGNORE, pred[0])
        labels[3] = pred[3]
        j = int(rng.randint(S))
        labels[3, j] = (pred[3, j] % (V - 1)) + 1 if pred[3, j] != 0 else 1  # a valid token != the prediction
        assert labels[3, j] != pred[3, j]
    return inputs, labels, pids


def make_train_batches(rng, cfg):
    B, S, V, N = cfg["batch_size"], cfg["seq_len"], cfg["vocab_size"], cfg["num_puzzle_identifiers"]
    out = []
    for t in range(T_TRAIN):
        inputs = rng.randint(1, V, size=(B, S)).astype(np.int32)
        pids = rng.randint(1, N, size=(B,)).astype(np.int32)
        labels = _random_labels(rng, (B, S), V)
        for i in range(B):
            if (t + i) % 3 == 1:
                labels[i] = _mask_some(rng, inputs[i])
        if t == 2:
            labels[3] = IGNORE
        out.append([inputs, labels, pids])
    return out


def assign_own_prediction_labels(batches, dry: dict, rng) -> None:
    """For about half of the consumed rows, set labels to the model's prediction where the row halts."""
    T = len(batches)
    B = batches[0][0].shape[0]
    halted = dry["halted"]
    pred = dry["logits"].argmax(-1).astype(np.int32)
    for t in range(T):
        consumed = [i for i in range(B) if t == 0 or halted[t - 1, i]]
        for n, i in enumerate(consumed):
            if t == 2 and i == 3:
                continue  # the all-ignored row stays all-ignored
            if (n + t) % 2 != 0:
                continue
            s = t
            while s < T - 1 and not halted[s, i]:
                s += 1
            batches[t][1][i] = _mask_some(rng, pred[s, i], p_ignore=0.2)


def build_case(hrm, losses, name: str, spec: dict, out_dir: Path, grad_steps_arg: str) -> None:
    cfg = spec["config"]
    seed = spec["seed"]
    loss_type = spec["loss_type"]
    out = out_dir / name
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)
    act = hrm.HierarchicalReasoningModel_ACTV1(dict(cfg))
    inner = act.inner
    _perturb_init(inner, cfg, seed + 1)
    head = losses.ACTLossHead(act, loss_type=loss_type)
    if loss_type == "softmax_cross_entropy":
        # The official softmax_cross_entropy calls .view() on logits.to(float32). With forward_dtype bfloat16 (the
        # official runs) that cast makes a contiguous copy; with float32 it is a no-op and the sliced logits
        # (puzzle positions dropped) are not viewable. Feed it a contiguous copy: same values, same gradients.
        official_ce = head.loss_fn
        head.loss_fn = lambda logits, labels, **kw: official_ce(logits.contiguous(), labels, **kw)

    # --- config.json
    config_json = act.config.model_dump()
    config_json["loss_type"] = loss_type
    (out / "config.json").write_text(json.dumps(config_json, indent=2) + "\n")

    # --- weights.safetensors (inner state dict, no prefix)
    sd = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in inner.state_dict().items()}
    save_file(sd, str(out / "weights.safetensors"))

    # --- checkpoints as pretrain.py saves them (through torch.compile + ACTLossHead)
    compiled = torch.compile(head, dynamic=False)
    ckpt = {k: v.detach().clone() for k, v in compiled.state_dict().items()}
    assert all(k.startswith("_orig_mod.model.inner.") for k in ckpt), list(ckpt)[:3]
    assert {k[len("_orig_mod.model.inner."):] for k in ckpt} == set(sd)
    torch.save(ckpt, out / "checkpoint_f32")
    torch.save({k: (v.to(torch.bfloat16) if v.is_floating_point() else v) for k, v in ckpt.items()},
               out / "checkpoint_bf16")
    del compiled

    # --- eval.npz
    T_eval = cfg["halt_max_steps"]
    rng_seed = seed + 2
    dry_in = make_eval_batch(np.random.RandomState(rng_seed), cfg, None)
    dry = eval_rollout(head, _to_batch(*dry_in), T_eval)
    inputs, labels, pids = make_eval_batch(np.random.RandomState(rng_seed), cfg, dry["logits"][-1])
    assert np.array_equal(inputs, dry_in[0]) and np.array_equal(pids, dry_in[2])
    ev = eval_rollout(head, _to_batch(inputs, labels, pids), T_eval)
    assert np.array_equal(ev["logits"], dry["logits"]), "eval forward not deterministic"
    np.savez(out / "eval.npz", inputs=inputs, labels=labels, puzzle_identifiers=pids, **ev)

    # --- train.npz + grads.safetensors
    if grad_steps_arg == "case":
        grad_steps = sorted(spec["grad_steps"])
    elif grad_steps_arg == "all":
        grad_steps = list(range(T_TRAIN))
    else:
        grad_steps = sorted({int(s) for s in grad_steps_arg.split(",")})
    assert all(0 <= s < T_TRAIN for s in grad_steps), grad_steps
    batches = make_train_batches(np.random.RandomState(seed + 3), cfg)
    dry_tr, _ = train_rollout(head, inner, [_to_batch(*b) for b in batches], cfg, seed + 4, False, [])
    assign_own_prediction_labels(batches, dry_tr, np.random.RandomState(seed + 5))
    tr, grads = train_rollout(head, inner, [_to_batch(*b) for b in batches], cfg, seed + 4, True, grad_steps)
    for k in ("logits", "q_halt_logits", "halted", "min_halt_steps", "z_H"):
        assert np.array_equal(tr[k], dry_tr[k]), f"train rollout not reproducible ({k})"
    tr["grad_steps"] = np.asarray(grad_steps, dtype=np.int32)
    np.savez(out / "train.npz", **tr)
    save_file(grads, str(out / "grads.safetensors"), metadata={"grad_steps": ",".join(map(str, grad_steps))})

    _report(name, out, ev, tr, grads)


def _report(name, out, ev, tr, grads) -> None:
    print(f"== case {name}")
    for f in sorted(out.iterdir()):
        print(f"   {f.name:22s} {f.stat().st_size:>9d} bytes")
    print("   eval: loss", np.round(ev["loss"], 4), "exact", ev["metric_exact_accuracy"],
          "q_halt_acc", ev["metric_q_halt_accuracy"], "count", ev["metric_count"],
          "acc", np.round(ev["metric_accuracy"], 3))
    print("   eval final q_halt", np.round(ev["q_halt_logits"][-1], 3))
    print("   train halted\n", tr["halted"].astype(int).T)
    print("   train steps\n", tr["steps"].T)
    print("   train min_halt_steps\n", tr["min_halt_steps"].T)
    print("   train q_halt>q_cont\n", (tr["q_halt_logits"] > tr["q_continue_logits"]).astype(int).T)
    print("   train loss", np.round(tr["loss"], 4))
    print("   train exact", tr["metric_exact_accuracy"], "count", tr["metric_count"],
          "q_halt_acc", tr["metric_q_halt_accuracy"])
    finite = all(np.isfinite(v).all() for v in list(ev.values()) + list(tr.values()) if v.dtype.kind == "f")
    gfinite = all(bool(torch.isfinite(g).all()) for g in grads.values())
    gnz = sum(int(g.abs().sum() > 0) for g in grads.values())
    print(f"   all finite: {finite}; grads finite: {gfinite}; nonzero grads {gnz}/{len(grads)}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", type=Path, required=True, help="checkout of github.com/sapientinc/HRM")
    ap.add_argument("--out", type=Path, required=True, help="output folder, e.g. tests/fixtures/hrm")
    ap.add_argument("--cases", default="rope,learned")
    ap.add_argument("--grad-steps", default="case",
                    help="train steps whose gradients go to grads.safetensors: 'case' (the per-case default, "
                         "2 steps, keeps the fixtures small), 'all', or a comma list such as 0,3")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    hrm, losses = load_official(args.official)
    for name in args.cases.split(","):
        build_case(hrm, losses, name, CASES[name], args.out, args.grad_steps)


if __name__ == "__main__":
    main()
