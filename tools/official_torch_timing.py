"""Time the official PyTorch HRM or TRM on this CPU (dev-only; needs torch 2.13 CPU and a checkout of
sapientinc/HRM or SamsungSAILMontreal/TinyRecursiveModels).

    /work/venv-torch/bin/python tools/official_torch_timing.py --official /tmp/hrm_official --batch 64 --trials 3
    python tools/official_torch_timing.py --family trm --official /tmp/trm_official --config '{"hidden_size": 64, ...}'

Prints one JSON object: seconds (wall, and CPU of all threads) per eval ACT step (ACTLossHead forward under
inference_mode) and per training step (train-mode ACT step with the Q-target pass when the model has one, loss /
global batch, backward, AdamATan2 restated in torch (the official kernel is CUDA-only) and the official sparse
SignSGD), float32; by default the official HRM Sudoku config, else ``--config`` (official config fields; others, such as hrm-mlx's ``mixer``, are
dropped). tools/bench_vs_official.py runs this beside our own measurements and prints the ratios.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import make_hrm_fixtures  # noqa: E402  (the FlashAttention stand-in lives there)
import make_trm_fixtures  # noqa: E402

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
            start, cpu = time.perf_counter(), time.process_time()
            carry, *_ = head(carry=carry, batch=data, return_keys=[])
            if i >= warmup:
                times.append((time.perf_counter() - start, time.process_time() - cpu))
    return times


def build(family: str, official: Path, config: dict, batch_size: int):
    """The official ACT model of ``family`` with the official config fields of ``config``, in its loss head."""
    if family == "hrm":
        hrm, losses = make_hrm_fixtures.load_official(official)
        act_class = hrm.HierarchicalReasoningModel_ACTV1
        config_class = hrm.HierarchicalReasoningModel_ACTV1Config
    else:
        trm, losses, _ema = make_trm_fixtures.load_official(official)
        act_class = trm.TinyRecursiveReasoningModel_ACTV1
        config_class = trm.TinyRecursiveReasoningModel_ACTV1Config
    fields = {k: v for k, v in config.items() if k in config_class.model_fields}
    model = act_class(dict(fields, batch_size=batch_size, forward_dtype="float32"))
    return model, losses.ACTLossHead(model, loss_type=config.get("loss_type", "stablemax_cross_entropy"))


def time_train(head, sparse_module, data, trials, warmup, global_batch):
    from models.sparse_embedding import CastedSparseEmbeddingSignSGD_Distributed

    head.train()
    sign_sgd = CastedSparseEmbeddingSignSGD_Distributed(sparse_module.buffers(), world_size=1, lr=1e-2,
                                                        weight_decay=0.1)
    params, state = list(head.parameters()), {}
    carry = head.initial_carry(data)
    times = []
    for i in range(warmup + trials):
        start, cpu = time.perf_counter(), time.process_time()
        carry, loss, *_ = head(carry=carry, batch=data, return_keys=[])
        (loss / global_batch).backward()
        sign_sgd.step()
        adam_atan2_step(params, state, lr=1e-4)
        for p in params:
            p.grad = None
        sign_sgd.zero_grad()
        if i >= warmup:
            times.append((time.perf_counter() - start, time.process_time() - cpu))
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("hrm", "trm"), default="hrm")
    parser.add_argument("--official", type=Path, required=True,
                        help="checkout of sapientinc/HRM (hrm) or SamsungSAILMontreal/TinyRecursiveModels (trm)")
    parser.add_argument("--config", type=json.loads, default=None,
                        help="model config as JSON (default: the official HRM Sudoku config)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = args.config or SUDOKU
    model, head = build(args.family, args.official, config, args.batch)
    data = batch(args.batch, config["seq_len"], config["vocab_size"])
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch,
              "params": sum(p.numel() for p in head.parameters())}
    steps = {"eval_step": time_eval(head, data, args.trials, args.warmup)}
    if not args.skip_train:
        steps["train_step"] = time_train(head, model.inner.puzzle_emb, data, args.trials, args.warmup, args.batch)
    for key, times in steps.items():
        result[f"{key}_s"] = [wall for wall, _ in times]
        result[f"{key}_mean_s"] = statistics.fmean(result[f"{key}_s"])  # as hrm-mlx bench averages
        result[f"{key}_cpu_s"] = [cpu for _, cpu in times]  # CPU time of all threads (spinning included)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
