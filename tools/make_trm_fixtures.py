"""Generate TRM parity fixtures from the official PyTorch implementation (dev-only tool).

Like tools/make_hrm_fixtures.py (whose helpers it imports: exploration recorder, q_head/puzzle-table
perturbation, batch and label construction, the eval rollout), this script is NOT part of the hrm_mlx package and
never imports it. It needs PyTorch (CPU), numpy, safetensors, pydantic and einops (imported by the official
layers), plus a working tree of the official code (github.com/SamsungSAILMontreal/TinyRecursiveModels at
e7b6871), which is imported from the path given with --official and never copied into this repository:

    git --git-dir=<bare mirror> archive HEAD models | tar -x -C /tmp/trm_official
    /work/venv-torch-trm/bin/python tools/make_trm_fixtures.py --official /tmp/trm_official --out tests/fixtures/trm

The official TRM layers call torch's scaled_dot_product_attention directly, so no FlashAttention stand-in is
needed. Everything runs on CPU in float32 (forward_dtype "float32"); all randomness is seeded, so re-running the
script reproduces the files. Nothing of the official code is changed or wrapped except where noted below.

Fixture format
==============

One directory per case, ``<out>/<case>/``:

| case  | block                       | pos_encodings | puzzle_emb_ndim | puzzle_emb_len P | H_cycles T | L_cycles n |
|-------|-----------------------------|---------------|-----------------|------------------|------------|------------|
| att   | attention (fused QKV)       | rope          | 96              | 3                | 3          | 2          |
| mlp_t | token-mixing SwiGLU (mlp_t) | none          | 64              | 4                | 2          | 3          |

Common: batch_size B = 4, seq_len S = 16, vocab_size V = 11, hidden_size D = 64, num_heads 4, expansion 4
(channel SwiGLU width I = 256; the mlp_t token SwiGLU works on L = S + P = 20 positions, width 256),
H_layers 0 (ignored by TRM), L_layers 2, num_puzzle_identifiers 6, halt_max_steps 4, halt_exploration_prob 0.5,
no_ACT_continue True (the official default: halt when q_halt > 0, no Q-continue target, no extra forward),
loss_type stablemax_cross_entropy (the official TRM loss head cannot run softmax_cross_entropy: it passes a
valid_mask argument that function does not take), forward_dtype float32, rms_norm_eps 1e-5, rope_theta 10000.
In "att" the 96-dim puzzle embedding is zero-padded to 3 * 64: prefix slot 0 is full, slot 1 half, slot 2 zero.
L = S + P. T_eval = halt_max_steps = 4; T_train = 8.

config.json
    The official TinyRecursiveReasoningModel_ACTV1Config as dumped by its pydantic class (batch_size, seq_len,
    puzzle_emb_ndim, num_puzzle_identifiers, vocab_size, H_cycles, L_cycles, H_layers, L_layers, hidden_size,
    expansion (float), num_heads, pos_encodings, rms_norm_eps, rope_theta, halt_max_steps,
    halt_exploration_prob, forward_dtype, mlp_t, puzzle_emb_len, no_ACT_continue), plus "loss_type" (the
    ACTLossHead loss function) and "family": "trm".

weights.safetensors
    TinyRecursiveReasoningModel_ACTV1_Inner.state_dict(), official names without prefix, float32:
        embed_tokens.embedding_weight               [V, D]
        lm_head.weight                              [V, D]
        q_head.weight, q_head.bias                  [2, D], [2]     row 0 -> q_halt, row 1 -> q_continue
        puzzle_emb.weights                          [6, puzzle_emb_ndim]
        H_init, L_init                              [D]             (persistent buffers)
        L_level.layers.{0,1}.self_attn.qkv_proj.weight  [3D, D]     (att)
        L_level.layers.{0,1}.self_attn.o_proj.weight    [D, D]      (att)
        L_level.layers.{0,1}.mlp_t.gate_up_proj.weight  [2*256, L]  (mlp_t)
        L_level.layers.{0,1}.mlp_t.down_proj.weight     [L, 256]    (mlp_t)
        L_level.layers.{0,1}.mlp.gate_up_proj.weight    [2I, D]
        L_level.layers.{0,1}.mlp.down_proj.weight       [D, I]
    Official init under torch.manual_seed(case seed), then q_head and the puzzle table are overwritten with
    non-trivial random values (make_hrm_fixtures._perturb_init: q_head.weight ~ N(0, (1.5/sqrt(D))^2),
    q_head.bias = [0.3, -0.2] + N(0, 0.2^2), puzzle_emb.weights ~ N(0, 1/D)), since the official zeros / -5
    would hide bugs (and would never halt).

checkpoint
    torch.save of the state dict as the official pretrain.py saves it with ema=True: the training model is
    torch.compile(ACTLossHead(TinyRecursiveReasoningModel_ACTV1(cfg))) (compiled wrapper never executed), the
    official EMAHelper registers it, and the saved dict is ema_helper.ema_copy(model).state_dict(). Keys are
    "_orig_mod.model.inner.<name>" with <name> as in weights.safetensors; the values equal weights.safetensors
    (the EMA shadow of an untrained model is its weights).

eval.npz  (model.eval(), torch.no_grad, official ACTLossHead) -- same layout as the HRM eval.npz
    (see tools/make_hrm_fixtures.py): inputs, labels, puzzle_identifiers, then per step t < T_eval:
    z_H, z_L [T, B, L, D]; logits [T, B, S, V]; q_halt_logits, q_continue_logits [T, B]; halted, steps [T, B];
    loss float64 [T] (lm_loss + 0.5 * q_halt_loss); metric_<name> [T] for count, accuracy, exact_accuracy,
    q_halt_accuracy, steps, lm_loss, q_halt_loss. Labels: row 0 = the final prediction (some -100) -> exactly
    right; row 1 random; row 2 = inputs; row 3 = a near miss.

train.npz  (model.train(), official ACTLossHead, T_train = 8 steps, a new batch handed in at every step)
    As the HRM train.npz (batch_*, current_*, min_halt_steps, z_H, z_L, logits, q_halt_logits,
    q_continue_logits, halted, steps, loss, metric_*, grad_steps), except that there is no target_q_continue
    and no metric_q_continue_loss: with no_ACT_continue the official ACT wrapper halts a row when
    (steps >= halt_max_steps or q_halt > 0) and steps >= min_halt_steps, and computes no Q-continue target;
    the loss is lm_loss + 0.5 * q_halt_loss. Values recorded with gradients enabled, in the gradient pass.
    grad_steps int32 [1]: the one step whose gradients are stored.

grads.safetensors
    Gradients of the unscaled total loss of step t (t = train.npz grad_steps, metadata {"grad_steps": "t"}),
    computed with loss.backward() on that step alone (weights never updated), float32:
        step{t}.{name}                     every inner-model parameter, names as in weights.safetensors
        step{t}.puzzle_emb.local_weights   [B, puzzle_emb_ndim] grad w.r.t. the puzzle-embedding row of each
                                           row of the current data
    The stored step has rows in different states: carried from earlier steps, freshly reset, and halting.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_hrm_fixtures as hrm_tool  # noqa: E402  (shared, torch-only helpers)

T_TRAIN = hrm_tool.T_TRAIN

BASE_CONFIG = dict(
    batch_size=4,
    seq_len=16,
    vocab_size=11,
    hidden_size=64,
    num_heads=4,
    expansion=4,
    num_puzzle_identifiers=6,
    H_layers=0,
    L_layers=2,
    halt_max_steps=4,
    halt_exploration_prob=0.5,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    forward_dtype="float32",
    no_ACT_continue=True,
)

CASES = {
    "att": dict(
        config=dict(BASE_CONFIG, pos_encodings="rope", mlp_t=False, puzzle_emb_ndim=96, puzzle_emb_len=3,
                    H_cycles=3, L_cycles=2),
        seed=4321,
        grad_step=5,  # row 0 carried and halting at halt_max_steps, rows 1-3 fresh (one halts on q_halt > 0)
    ),
    "mlp_t": dict(
        config=dict(BASE_CONFIG, pos_encodings="none", mlp_t=True, puzzle_emb_ndim=64, puzzle_emb_len=4,
                    H_cycles=2, L_cycles=3),
        seed=8765,
        grad_step=3,  # rows 1, 3 fresh; row 0 carried; row 2 at halt_max_steps; rows 0, 2, 3 halt
    ),
}
LOSS_TYPE = "stablemax_cross_entropy"
METRICS = hrm_tool.METRICS_INT + hrm_tool.METRICS_FLOAT


def load_official(official_dir: Path):
    sys.path.insert(0, str(official_dir.resolve()))
    trm = importlib.import_module("models.recursive_reasoning.trm")
    losses = importlib.import_module("models.losses")
    ema = importlib.import_module("models.ema")
    return trm, losses, ema


def train_rollout(head, inner, batches: list, cfg: dict, torch_seed: int, with_grads: bool, grad_steps) -> tuple:
    """The official training loop's model calls (pretrain.train_batch without the optimizer), recorded."""
    head.train()
    rec: dict = {}
    grads: dict = {}
    recorder = hrm_tool.ExplorationRecorder()
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
            assert "target_q_continue" not in outputs and "q_continue_loss" not in metrics  # no_ACT_continue
            if with_grads:
                loss.backward()
                if t in grad_steps:
                    for name, p in params.items():
                        assert p.grad is not None, name
                        grads[f"step{t}.{name}"] = p.grad.detach().to(torch.float32).clone()
                    assert local_w.grad is not None
                    grads[f"step{t}.puzzle_emb.local_weights"] = local_w.grad.detach().to(torch.float32).clone()
            rec.setdefault("min_halt_steps", []).append(
                hrm_tool._np(recorder.pop_min_halt_steps(cfg["halt_exploration_prob"])))
            for k in ("inputs", "labels", "puzzle_identifiers"):
                rec.setdefault(f"batch_{k}", []).append(hrm_tool._np(batch[k]).astype(np.int32))
                rec.setdefault(f"current_{k}", []).append(hrm_tool._np(carry.current_data[k]).astype(np.int32))
            rec.setdefault("z_H", []).append(hrm_tool._np(carry.inner_carry.z_H))
            rec.setdefault("z_L", []).append(hrm_tool._np(carry.inner_carry.z_L))
            for k in ("logits", "q_halt_logits", "q_continue_logits"):
                rec.setdefault(k, []).append(hrm_tool._np(outputs[k]))
            rec.setdefault("halted", []).append(hrm_tool._np(carry.halted).astype(bool))
            rec.setdefault("steps", []).append(hrm_tool._np(carry.steps).astype(np.int32))
            rec.setdefault("loss", []).append(loss.item())
            hrm_tool._metrics_to_record(rec, metrics, METRICS)
    head.zero_grad(set_to_none=True)
    local_w.grad = None
    return hrm_tool._stack(rec), grads


def build_case(trm, losses, ema, name: str, spec: dict, out_dir: Path) -> None:
    cfg = spec["config"]
    seed = spec["seed"]
    out = out_dir / name
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)
    act = trm.TinyRecursiveReasoningModel_ACTV1(dict(cfg))
    inner = act.inner
    hrm_tool._perturb_init(inner, cfg, seed + 1)
    head = losses.ACTLossHead(act, loss_type=LOSS_TYPE)

    config_json = act.config.model_dump()
    config_json.update(loss_type=LOSS_TYPE, family="trm")
    (out / "config.json").write_text(json.dumps(config_json, indent=2) + "\n")

    sd = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in inner.state_dict().items()}
    save_file(sd, str(out / "weights.safetensors"))

    # As pretrain.py with ema=True: compiled loss head, EMA registered on it, the EMA copy's state dict saved.
    compiled = torch.compile(head)
    ema_helper = ema.EMAHelper(mu=0.999)
    ema_helper.register(compiled)
    ckpt = {k: v.detach().clone() for k, v in ema_helper.ema_copy(compiled).state_dict().items()}
    assert all(k.startswith("_orig_mod.model.inner.") for k in ckpt), list(ckpt)[:3]
    assert {k[len("_orig_mod.model.inner."):] for k in ckpt} == set(sd)
    torch.save(ckpt, out / "checkpoint")
    del compiled

    T_eval = cfg["halt_max_steps"]
    rng_seed = seed + 2
    dry_in = hrm_tool.make_eval_batch(np.random.RandomState(rng_seed), cfg, None)
    dry = hrm_tool.eval_rollout(head, hrm_tool._to_batch(*dry_in), T_eval)
    inputs, labels, pids = hrm_tool.make_eval_batch(np.random.RandomState(rng_seed), cfg, dry["logits"][-1])
    ev = hrm_tool.eval_rollout(head, hrm_tool._to_batch(inputs, labels, pids), T_eval)
    assert np.array_equal(ev["logits"], dry["logits"]), "eval forward not deterministic"
    np.savez(out / "eval.npz", inputs=inputs, labels=labels, puzzle_identifiers=pids, **ev)

    grad_steps = [spec["grad_step"]]
    batches = hrm_tool.make_train_batches(np.random.RandomState(seed + 3), cfg)
    dry_tr, _ = train_rollout(head, inner, [hrm_tool._to_batch(*b) for b in batches], cfg, seed + 4, False, [])
    hrm_tool.assign_own_prediction_labels(batches, dry_tr, np.random.RandomState(seed + 5))
    tr, grads = train_rollout(head, inner, [hrm_tool._to_batch(*b) for b in batches], cfg, seed + 4, True,
                              grad_steps)
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
          "q_halt_acc", ev["metric_q_halt_accuracy"], "count", ev["metric_count"])
    print("   train halted\n", tr["halted"].astype(int).T)
    print("   train steps\n", tr["steps"].T)
    print("   train min_halt_steps\n", tr["min_halt_steps"].T)
    print("   train q_halt>0\n", (tr["q_halt_logits"] > 0).astype(int).T)
    print("   train loss", np.round(tr["loss"], 4))
    print("   train exact", tr["metric_exact_accuracy"], "count", tr["metric_count"],
          "q_halt_acc", tr["metric_q_halt_accuracy"])
    finite = all(np.isfinite(v).all() for v in list(ev.values()) + list(tr.values()) if v.dtype.kind == "f")
    gnz = sum(int(g.abs().sum() > 0) for g in grads.values())
    print(f"   all finite: {finite}; nonzero grads {gnz}/{len(grads)}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", type=Path, required=True,
                    help="working tree of github.com/SamsungSAILMontreal/TinyRecursiveModels")
    ap.add_argument("--out", type=Path, required=True, help="output folder, e.g. tests/fixtures/trm")
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    trm, losses, ema = load_official(args.official)
    for name in args.cases.split(","):
        build_case(trm, losses, ema, name, CASES[name], args.out)


if __name__ == "__main__":
    main()
