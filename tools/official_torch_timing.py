"""Time the official PyTorch HRM on this CPU (dev-only; needs torch 2.13 CPU and a checkout of sapientinc/HRM).

    /work/venv-torch/bin/python tools/official_torch_timing.py --official /tmp/hrm_official --batch 64 --trials 3

Prints one JSON object: seconds per eval ACT step (ACTLossHead forward under inference_mode) and per training
step (train-mode ACT step with the extra Q-target pass, loss / global batch, backward, AdamATan2 restated in
torch (the official kernel is CUDA-only) and the official sparse SignSGD), float32, the official Sudoku config.
tools/bench_vs_official.py runs this beside our own measurements and prints the ratios.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from make_hrm_fixtures import load_official  # noqa: E402  (the FlashAttention stand-in lives there)

SUDOKU = dict(seq_len=81, vocab_size=11, num_puzzle_identifiers=1, H_cycles=2, L_cycles=2, H_layers=4, L_layers=4,
              hidden_size=512, expansion=4.0, num_heads=8, pos_encodings="rope", halt_max_steps=16,
              halt_exploration_prob=0.1, puzzle_emb_ndim=512, forward_dtype="float32")


@torch.no_grad()
def adam_atan2_step(params, state, lr, betas=(0.9, 0.95), weight_decay=0.1):
    """AdamATan2 (imoneoi/adam-atan2): decoupled decay, Adam moments, atan2 in place of division (no epsilon)."""
    state["t"] = state.get("t", 0) + 1
    t = state["t"]
    for p in params:
        if p.grad is None:
            continue
        m, v = state.setdefault(id(p), (torch.zeros_like(p), torch.zeros_like(p)))
        p.mul_(1 - lr * weight_decay)
        m.lerp_(p.grad, 1 - betas[0])
        v.mul_(betas[1]).addcmul_(p.grad, p.grad, value=1 - betas[1])
        p.add_(torch.atan2(m, v.sqrt() / (1 - betas[1] ** t) ** 0.5), alpha=-lr / (1 - betas[0] ** t))


def batch(size, seq_len, vocab):
    return {"inputs": torch.randint(1, vocab, (size, seq_len), dtype=torch.int32),
            "labels": torch.randint(1, vocab, (size, seq_len), dtype=torch.int64),
            "puzzle_identifiers": torch.zeros(size, dtype=torch.int32)}


def time_eval(head, data, trials, warmup):
    head.eval()
    times = []
    with torch.inference_mode():
        carry = head.initial_carry(data)
        for i in range(warmup + trials):
            start = time.perf_counter()
            carry, *_ = head(carry=carry, batch=data, return_keys=[])
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times


def time_train(head, sparse_module, data, trials, warmup, global_batch):
    from models.sparse_embedding import CastedSparseEmbeddingSignSGD_Distributed

    head.train()
    sign_sgd = CastedSparseEmbeddingSignSGD_Distributed(sparse_module.buffers(), world_size=1, lr=1e-2,
                                                        weight_decay=0.1)
    params, state = list(head.parameters()), {}
    carry = head.initial_carry(data)
    times = []
    for i in range(warmup + trials):
        start = time.perf_counter()
        carry, loss, *_ = head(carry=carry, batch=data, return_keys=[])
        (loss / global_batch).backward()
        sign_sgd.step()
        adam_atan2_step(params, state, lr=1e-4)
        for p in params:
            p.grad = None
        sign_sgd.zero_grad()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of sapientinc/HRM")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hrm, losses = load_official(args.official)
    model = hrm.HierarchicalReasoningModel_ACTV1(dict(SUDOKU, batch_size=args.batch))
    head = losses.ACTLossHead(model, loss_type="stablemax_cross_entropy")
    data = batch(args.batch, SUDOKU["seq_len"], SUDOKU["vocab_size"])
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch,
              "params": sum(p.numel() for p in head.parameters()),
              "eval_step_s": time_eval(head, data, args.trials, args.warmup)}
    if not args.skip_train:
        result["train_step_s"] = time_train(head, model.inner.puzzle_emb, data, args.trials, args.warmup, args.batch)
    for key in ("eval_step_s", "train_step_s"):
        if key in result:
            result[key[:-2] + "_mean_s"] = statistics.fmean(result[key])  # as hrm-mlx bench averages
    print(json.dumps(result))


if __name__ == "__main__":
    main()
