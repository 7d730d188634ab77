"""HRM: the Hierarchical Reasoning Model (ACT v1), as in sapientinc/HRM (models/hrm/hrm_act_v1.py).

Two stacks of post-norm transformer blocks share one sequence layout: a slow H-module and a fast L-module, each
keeping a full-length state (z_H, z_L). One call of the model is one ACT step (one segment of deep supervision):

    repeat H_cycles times:
        repeat L_cycles times:  z_L <- L_level(z_L + z_H + x)
        z_H <- H_level(z_H + z_L)

All but the last L and H updates run without gradient (the paper's 1-step gradient approximation). The ACT loop
around this call (carry, halting, Q-learning target) lives in act.py and is shared with TRM.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields

import mlx.core as mx
import mlx.nn as nn

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models.layers import (Block, CastedEmbedding, CastedLinear, ReasoningModule, Rope, swiglu_width,
                                   trunc_normal)


@dataclass
class ModelArgs:
    """The official HRM config (field names as in the official pydantic config and yaml files)."""

    seq_len: int
    vocab_size: int
    num_puzzle_identifiers: int
    H_cycles: int
    L_cycles: int
    H_layers: int
    L_layers: int
    hidden_size: int
    expansion: float
    num_heads: int
    pos_encodings: str  # "rope" or "learned"
    halt_max_steps: int
    halt_exploration_prob: float
    puzzle_emb_ndim: int = 0
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    forward_dtype: str = "bfloat16"
    loss_type: str = "stablemax_cross_entropy"  # or "softmax_cross_entropy"
    mixer: str = "attention"

    @classmethod
    def from_dict(cls, config: dict) -> "ModelArgs":
        """Build from a config dict; keys that are not model fields (e.g. the official batch_size) are ignored."""
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        missing = sorted(required - config.keys())
        if missing:
            raise HrmMlxError(f"model config lacks {', '.join(missing)}")
        args = cls(**{k: v for k, v in config.items() if k in names})
        args.validate()
        return args

    def validate(self) -> None:
        if self.pos_encodings not in ("rope", "learned"):
            raise HrmMlxError(f"pos_encodings must be 'rope' or 'learned', not {self.pos_encodings!r}")
        if self.forward_dtype not in ("float32", "bfloat16", "float16"):
            raise HrmMlxError(f"forward_dtype must be float32, bfloat16 or float16, not {self.forward_dtype!r}")
        if self.loss_type not in ("stablemax_cross_entropy", "softmax_cross_entropy"):
            raise HrmMlxError(f"unknown loss_type {self.loss_type!r}")
        if self.hidden_size % self.num_heads:
            raise HrmMlxError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")

    @property
    def puzzle_emb_len(self) -> int:
        """Number of sequence positions the puzzle embedding occupies (ceil(puzzle_emb_ndim / hidden_size))."""
        return -(self.puzzle_emb_ndim // -self.hidden_size)


class Model(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        H = args.hidden_size
        self.dtype = getattr(mx, args.forward_dtype)
        self.puzzle_emb_len = args.puzzle_emb_len

        self.embed_tokens = CastedEmbedding(args.vocab_size, H, init_std=1.0 / math.sqrt(H))
        self.lm_head = CastedLinear(H, args.vocab_size)
        self.q_head = CastedLinear(H, 2, bias=True)
        # Halting starts almost never chosen (q_halt ~ -5), so early training explores deep recursion.
        self.q_head.weight = mx.zeros_like(self.q_head.weight)
        self.q_head.bias = mx.full((2,), -5.0)
        if args.puzzle_emb_ndim > 0:
            self.puzzle_emb = CastedEmbedding(args.num_puzzle_identifiers, args.puzzle_emb_ndim, init_std=0.0)
        self.rope = Rope(H // args.num_heads, args.rope_theta) if args.pos_encodings == "rope" else None
        if args.pos_encodings == "learned":
            self.embed_pos = CastedEmbedding(args.seq_len + self.puzzle_emb_len, H, init_std=1.0 / math.sqrt(H))

        def blocks(n: int) -> list[Block]:
            return [Block(H, args.num_heads, args.expansion, args.rms_norm_eps, args.mixer) for _ in range(n)]

        self.H_level = ReasoningModule(blocks(args.H_layers))
        self.L_level = ReasoningModule(blocks(args.L_layers))
        self.H_init = trunc_normal((H,), std=1.0)
        self.L_init = trunc_normal((H,), std=1.0)
        # Not trained by the gradient optimizer: the initial states are constants and the puzzle table is
        # updated sparsely by SignSGD through the gathered rows (see puzzle_rows).
        self.freeze(keys=["H_init", "L_init"], recurse=False)
        if "puzzle_emb" in self:
            self.puzzle_emb.freeze()

    # -- state -------------------------------------------------------------------------------------------------
    def initial_state(self, batch_size: int) -> tuple[mx.array, mx.array]:
        shape = (batch_size, self.args.seq_len + self.puzzle_emb_len, self.args.hidden_size)
        return (mx.broadcast_to(self.H_init.astype(self.dtype), shape),
                mx.broadcast_to(self.L_init.astype(self.dtype), shape))

    def reset_state(self, reset: mx.array, state: tuple[mx.array, mx.array]) -> tuple[mx.array, mx.array]:
        z_H, z_L = state
        reset = reset[:, None, None]
        return (mx.where(reset, self.H_init.astype(self.dtype), z_H),
                mx.where(reset, self.L_init.astype(self.dtype), z_L))

    # -- embedding ---------------------------------------------------------------------------------------------
    def puzzle_rows(self, puzzle_identifiers: mx.array) -> mx.array | None:
        """The puzzle-embedding rows of a batch; training differentiates with respect to these rows only."""
        if "puzzle_emb" not in self:
            return None
        return self.puzzle_emb.weight[puzzle_identifiers]

    def input_embeddings(self, inputs: mx.array, puzzle_rows: mx.array | None) -> mx.array:
        x = self.embed_tokens(inputs, self.dtype)
        if puzzle_rows is not None:
            B, P, H = x.shape[0], self.puzzle_emb_len, self.args.hidden_size
            rows = puzzle_rows.astype(self.dtype)
            pad = P * H - rows.shape[-1]
            if pad:
                rows = mx.pad(rows, [(0, 0), (0, pad)])
            x = mx.concatenate([rows.reshape(B, P, H), x], axis=1)
        if self.args.pos_encodings == "learned":
            x = 0.707106781 * (x + self.embed_pos.weight.astype(self.dtype))  # keeps the variance of a sum of two
        return math.sqrt(self.args.hidden_size) * x

    # -- one ACT step ------------------------------------------------------------------------------------------
    def __call__(self, state, inputs: mx.array, puzzle_rows: mx.array | None):
        """One ACT step: returns (new state, logits [B, seq_len, vocab], q_halt [B], q_continue [B])."""
        x = self.input_embeddings(inputs, puzzle_rows)
        z_H, z_L = state
        args = self.args
        for h in range(args.H_cycles):
            for l in range(args.L_cycles):
                if h < args.H_cycles - 1 or l < args.L_cycles - 1:
                    z_L = self.L_level(z_L, z_H + x, self.rope)
            if h < args.H_cycles - 1:
                z_H = self.H_level(z_H, z_L, self.rope)
        # 1-step gradient: only the last L and H updates are differentiated.
        z_H, z_L = mx.stop_gradient(z_H), mx.stop_gradient(z_L)
        z_L = self.L_level(z_L, z_H + x, self.rope)
        z_H = self.H_level(z_H, z_L, self.rope)

        logits = self.lm_head(z_H[:, self.puzzle_emb_len:])
        q = self.q_head(z_H[:, 0]).astype(mx.float32)  # the puzzle slot summarises the sequence for halting
        return (z_H, z_L), logits, q[:, 0], q[:, 1]

    @staticmethod
    def sanitize(weights: dict) -> dict:
        """Map official state-dict names (``_orig_mod.model.inner.embed_tokens.embedding_weight``, ...) to ours."""
        out = {}
        for name, value in weights.items():
            for prefix in ("_orig_mod.", "model.", "inner."):
                name = name.removeprefix(prefix)
            if name.startswith("rotary_emb.") or name in ("puzzle_emb.local_weights", "puzzle_emb.local_ids"):
                continue  # derived tables and training scratch buffers, not weights
            name = name.replace("embedding_weight", "weight").replace("puzzle_emb.weights", "puzzle_emb.weight")
            out[name] = value
        return out


def flops_per_step(args: ModelArgs, batch_size: int) -> float:
    """Floating-point operations of one ACT step (eval: one model call), counting matmuls only (2 per
    multiply-add), the usual convention for achieved-FLOP/s figures."""
    H, S = args.hidden_size, args.seq_len + args.puzzle_emb_len
    tokens = batch_size * S
    width = swiglu_width(H, args.expansion)
    per_block = 2 * tokens * H * (3 * H + H + 3 * width) + 4 * batch_size * S * S * H  # projections + attention
    block_calls = args.H_cycles * (args.L_cycles * args.L_layers + args.H_layers)
    return block_calls * per_block + 2 * batch_size * args.seq_len * H * args.vocab_size
