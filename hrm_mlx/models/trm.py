"""TRM: the Tiny Recursive Model, as in SamsungSAILMontreal/TinyRecursiveModels
(models/recursive_reasoning/trm.py at e7b6871).

One small network (``L_level``, L_layers post-norm blocks) updates two full-length states, the answer y (``z_H``)
and the latent z (``z_L``). One call of the model is one ACT step (one supervision step), a *deep recursion*:

    repeat H_cycles (T) times:                      # a latent recursion
        repeat L_cycles (n) times:  z_L <- L_level(z_L + z_H + x)
        z_H <- L_level(z_H + z_L)                   # the same weights; x is not added here

The first T-1 latent recursions run without gradient; the last one is differentiated through all of its n+1
network calls. The embedding, heads and initial states are HRM's (recursive.py), except that the puzzle
embedding takes ``puzzle_emb_len`` prefix positions (16 in the official config) whatever its width. With
``mlp_t`` the blocks mix positions with an MLP across the sequence instead of attention (layers.TokenMLPBlock;
the Sudoku "TRM-MLP"). The ACT loop and loss head are act.py's; with ``no_ACT_continue`` (the official
default) training halts on q_halt > 0 alone and learns no Q-continue value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mlx.core as mx

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import hrm
from hrm_mlx.models.layers import ReasoningModule, TokenMLPBlock
from hrm_mlx.models.recursive import RecursiveModel, block_flops, head_flops


@dataclass
class ModelArgs(hrm.ModelArgs):
    """The official TRM config (TinyRecursiveReasoningModel_ACTV1Config): HRM's fields, of which H_layers is
    ignored (it is 0 in config/arch/trm.yaml), plus the three below, with the official defaults.

    ``puzzle_emb_len`` is the number of prefix positions; 0 means ceil(puzzle_emb_ndim / hidden_size) as in HRM
    (stored resolved, so the attribute is always the actual count). ``no_ACT_continue=False`` gives HRM-style
    halting (q_halt > q_continue and the bootstrapped Q-continue target), the paper's ablation; the official
    trm.py crashes in that setting (it unpacks five values from its three-value inner forward).
    ``pos_encodings`` may also be "none" (no position information, as the official Sudoku mlp_t runs use)."""

    POS_ENCODINGS: ClassVar[tuple[str, ...]] = ("rope", "learned", "none")

    mlp_t: bool = False
    puzzle_emb_len: int = 16
    no_ACT_continue: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.puzzle_emb_len == 0:
            self.puzzle_emb_len = -(self.puzzle_emb_ndim // -self.hidden_size)

    def validate(self) -> None:
        if self.H_cycles < 1 or self.L_cycles < 1:
            raise HrmMlxError("H_cycles and L_cycles must be at least 1")
        super().validate()
        if self.mlp_t and self.mixer != "attention":
            raise HrmMlxError(f"mlp_t replaces the token mixer; it cannot be combined with mixer {self.mixer!r}")
        if self.puzzle_emb_ndim == 0 and self.puzzle_emb_len:
            raise HrmMlxError("puzzle_emb_len > 0 needs a puzzle embedding (puzzle_emb_ndim > 0); "
                              "set puzzle_emb_len to 0 for none")
        if self.puzzle_emb_ndim > self.puzzle_emb_len * self.hidden_size:
            raise HrmMlxError(f"puzzle_emb_ndim {self.puzzle_emb_ndim} does not fit in puzzle_emb_len "
                              f"{self.puzzle_emb_len} positions of {self.hidden_size}")


class Model(RecursiveModel):
    """TRM's single reasoning network on the shared embedding, heads and initial states (recursive.py)."""

    def build_levels(self) -> None:
        args = self.args
        H = args.hidden_size
        if args.mlp_t:
            length = args.seq_len + args.puzzle_emb_len
            blocks = [TokenMLPBlock(H, length, args.expansion, args.rms_norm_eps) for _ in range(args.L_layers)]
        else:
            blocks = args.blocks(args.L_layers)
        self.L_level = ReasoningModule(blocks)

    @property
    def no_ACT_continue(self) -> bool:
        return self.args.no_ACT_continue

    def latent_recursion(self, z_H: mx.array, z_L: mx.array, x: mx.array) -> tuple[mx.array, mx.array]:
        """n latent updates from question, answer and latent, then one answer update from answer and latent."""
        for _ in range(self.args.L_cycles):
            z_L = self.L_level(z_L, z_H + x, self.rope)
        z_H = self.L_level(z_H, z_L, self.rope)
        return z_H, z_L

    def __call__(self, state, inputs: mx.array, puzzle_rows: mx.array | None):
        """One ACT step (a deep recursion): returns (new state, logits [B, seq_len, vocab], q_halt [B],
        q_continue [B])."""
        x = self.input_embeddings(inputs, puzzle_rows)
        z_H, z_L = state
        for _ in range(self.args.H_cycles - 1):
            z_H, z_L = self.latent_recursion(z_H, z_L, x)
        # Only the last latent recursion is differentiated (through all of its n + 1 network calls).
        z_H, z_L = self.latent_recursion(mx.stop_gradient(z_H), mx.stop_gradient(z_L), x)
        return (z_H, z_L), *self.heads(z_H)

    def flops_per_step(self, batch_size: int) -> float:
        return flops_per_step(self.args, batch_size)


def flops_per_step(args: ModelArgs, batch_size: int) -> float:
    """Floating-point operations of one ACT step (one model call; a training step with no_ACT_continue=False
    makes a second one), counting matmuls only (2 per multiply-add): H_cycles * (L_cycles + 1) network calls of
    L_layers blocks, plus the output head."""
    block_calls = args.H_cycles * (args.L_cycles + 1) * args.L_layers
    per_block = block_flops(batch_size, args.seq_len + args.puzzle_emb_len, args.hidden_size, args.expansion,
                            mlp_t=args.mlp_t, mixer=args.mixer_args)
    return block_calls * per_block + head_flops(batch_size, args.seq_len, args.hidden_size, args.vocab_size)
