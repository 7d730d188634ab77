"""What the recursive reasoning families (HRM, TRM) share around their recursion.

Both official codes (TRM is a fork of HRM) have the same input and output layers: the token embedding scaled by
sqrt(hidden_size), the puzzle-embedding prefix (one table row per puzzle, zero-padded to ``puzzle_emb_len``
positions in front of the sequence), optional learned positions or RoPE, the two initial states ``H_init`` and
``L_init`` (constant buffers broadcast over batch and positions), ``lm_head`` on the non-prefix positions and
``q_head`` (halt, continue) on the first prefix position. ``RecursiveModel`` holds these, with the official
parameter names, the state reset and the mapping of official state-dict names; a family subclasses it, builds its
reasoning levels in ``build_levels`` and defines ``__call__`` (one ACT step, see act.py).
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from hrm_mlx.models.layers import (Block, CastedEmbedding, CastedLinear, Rope, TokenMLPBlock, swiglu_width,
                                   trunc_normal)


class RecursiveModel(nn.Module):
    """The shared embedding, heads and initial states. ``args`` needs the official config fields hidden_size,
    num_heads, vocab_size, seq_len, puzzle_emb_ndim, num_puzzle_identifiers, pos_encodings, rope_theta and
    forward_dtype, and ``puzzle_emb_len`` (the number of prefix positions)."""

    def __init__(self, args):
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

        self.build_levels()
        self.H_init = trunc_normal((H,), std=1.0)
        self.L_init = trunc_normal((H,), std=1.0)
        # Not trained by the gradient optimizer: the initial states are constants and the puzzle table is
        # updated sparsely by SignSGD through the gathered rows (see puzzle_rows).
        self.freeze(keys=["H_init", "L_init"], recurse=False)
        if "puzzle_emb" in self:
            self.puzzle_emb.freeze()

    def build_levels(self) -> None:
        """Create the family's reasoning modules (attributes named as in the official code)."""
        raise NotImplementedError

    @property
    def no_ACT_continue(self) -> bool:
        """True: training halts on q_halt > 0 alone, without the bootstrapped Q-continue target (TRM's default).
        False: halt on q_halt > q_continue and learn q_continue (HRM)."""
        return False

    @property
    def runs_at_any_size(self) -> bool:
        """True when no parameter is tied to the sequence length, so the model runs on grids of any side (its
        config's seq_len is only the canvas it was trained on): its token mixers work on the grid itself
        (``size_free``: the convolution) and it has no learned positions. Flattened-sequence mixers (attention
        with RoPE, TRM's token MLP) learned the canvas's row stride and keep their canvas."""
        blocks = [module for module in self.modules() if isinstance(module, (Block, TokenMLPBlock))]
        return self.args.pos_encodings != "learned" and bool(blocks) and all(
            isinstance(block, Block) and getattr(block.self_attn, "size_free", False) for block in blocks)

    # -- state -------------------------------------------------------------------------------------------------
    def initial_state(self, batch_size: int, seq_len: int | None = None) -> tuple[mx.array, mx.array]:
        """The initial (z_H, z_L) for ``batch_size`` rows of ``seq_len`` tokens (default: the config's)."""
        shape = (batch_size, (seq_len or self.args.seq_len) + self.puzzle_emb_len, self.args.hidden_size)
        return (mx.broadcast_to(self.H_init.astype(self.dtype), shape),
                mx.broadcast_to(self.L_init.astype(self.dtype), shape))

    def reset_state(self, reset: mx.array, state: tuple[mx.array, mx.array]) -> tuple[mx.array, mx.array]:
        z_H, z_L = state
        reset = reset[:, None, None]
        return (mx.where(reset, self.H_init.astype(self.dtype), z_H),
                mx.where(reset, self.L_init.astype(self.dtype), z_L))

    # -- embedding and heads -----------------------------------------------------------------------------------
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

    def heads(self, z_H: mx.array) -> tuple[mx.array, mx.array, mx.array]:
        """(logits [B, seq_len, vocab] without the prefix positions, q_halt [B], q_continue [B])."""
        logits = self.lm_head(z_H[:, self.puzzle_emb_len:])
        q = self.q_head(z_H[:, 0]).astype(mx.float32)  # the puzzle slot summarises the sequence for halting
        return logits, q[:, 0], q[:, 1]

    @staticmethod
    def sanitize(weights: dict) -> dict:
        """Map official state-dict names (``_orig_mod.model.inner.embed_tokens.embedding_weight``, ...) to ours.
        The same for both families and for EMA checkpoints (the official trainer saves the EMA copy of the
        whole wrapped model, so its names are those of the training model)."""
        out = {}
        for name, value in weights.items():
            for prefix in ("_orig_mod.", "model.", "inner."):
                name = name.removeprefix(prefix)
            if name.startswith("rotary_emb.") or name in ("puzzle_emb.local_weights", "puzzle_emb.local_ids"):
                continue  # derived tables and training scratch buffers, not weights
            name = name.replace("embedding_weight", "weight").replace("puzzle_emb.weights", "puzzle_emb.weight")
            out[name] = value
        return out


def block_flops(batch_size: int, length: int, hidden_size: int, expansion: float, *, mlp_t: bool = False,
                mixer=None) -> float:
    """Matmul FLOPs (2 per multiply-add) of one block application on [batch_size, length, hidden_size]:
    the token mixer (``mixer``, a mixers.MixerConfig, or TRM's token MLP) plus the channel SwiGLU."""
    from hrm_mlx.models.mixers import AttentionConfig

    tokens = batch_size * length
    H = hidden_size
    channel = 2 * tokens * H * 3 * swiglu_width(H, expansion)
    if mlp_t:
        token_mix = 2 * batch_size * H * length * 3 * swiglu_width(length, expansion)
    else:
        token_mix = (mixer or AttentionConfig()).flops(batch_size, length, H)
    return token_mix + channel


def head_flops(batch_size: int, seq_len: int, hidden_size: int, vocab_size: int) -> float:
    return 2 * batch_size * seq_len * hidden_size * vocab_size
