"""HRM: the Hierarchical Reasoning Model (ACT v1), as in sapientinc/HRM (models/hrm/hrm_act_v1.py).

Two stacks of post-norm transformer blocks share one sequence layout: a slow H-module and a fast L-module, each
keeping a full-length state (z_H, z_L). One call of the model is one ACT step (one segment of deep supervision):

    repeat H_cycles times:
        repeat L_cycles times:  z_L <- L_level(z_L + z_H + x)
        z_H <- H_level(z_H + z_L)

All but the last L and H updates run without gradient (the paper's 1-step gradient approximation). The ACT loop
around this call (carry, halting, Q-learning target) lives in act.py and is shared with TRM, as are the input
embedding, the heads and the initial states (recursive.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import mlx.core as mx

from hrm_mlx.config import Settings
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models.layers import Block, ReasoningModule
from hrm_mlx.models.mixers import MixerConfig, mixer_class, options_from_legacy
from hrm_mlx.models.recursive import RecursiveModel, block_flops, head_flops


@dataclass
class ModelArgs(Settings):
    """The official HRM config (field names as in the official pydantic config and yaml files), and our token
    mixer. Read with ``from_dict`` (every value checked; keys that are no field are ignored unless ``strict``)."""

    kind: ClassVar[str] = "model field"
    POSITIVE: ClassVar[tuple[str, ...]] = (
        "seq_len", "vocab_size", "num_puzzle_identifiers", "hidden_size", "num_heads", "H_cycles", "L_cycles",
        "halt_max_steps", "expansion", "rms_norm_eps", "rope_theta")  # zero would break the model
    POS_ENCODINGS: ClassVar[tuple[str, ...]] = ("rope", "learned")  # the values the family's official code accepts

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
    mixer: str = "attention"  # a key of mixers.MIXERS: the official attention, "flare", "conv", "grid_mask"
    mixer_args: dict | MixerConfig = field(default_factory=dict)  # the mixer's options (its MixerConfig fields)

    def __post_init__(self) -> None:
        if not isinstance(self.mixer_args, MixerConfig):
            self.mixer_args = mixer_class(self.mixer).from_dict(self.mixer_args, "mixer_args.")

    @classmethod
    def from_dict(cls, config: dict, prefix: str = "", *, strict: bool = False) -> "ModelArgs":
        """Build from a config dict; with ``strict`` (a recipe) keys that are no field are errors, otherwise (a
        config.json, which also holds the family, the task, ...) they are ignored."""
        if isinstance(config.get("mixer", "attention"), str):
            config = options_from_legacy(config.get("mixer", "attention"), config, strict)
        return super().from_dict(config, prefix, strict=strict)

    def validate(self) -> None:
        for name in self.POSITIVE:
            if not getattr(self, name) > 0:
                raise HrmMlxError(f"{name} must be positive, not {getattr(self, name)!r}")
        if not 0 <= self.halt_exploration_prob <= 1:
            raise HrmMlxError(f"halt_exploration_prob must lie in [0, 1], not {self.halt_exploration_prob!r}")
        if self.pos_encodings not in self.POS_ENCODINGS:
            raise HrmMlxError(f"pos_encodings must be one of {', '.join(map(repr, self.POS_ENCODINGS))}, "
                              f"not {self.pos_encodings!r}")
        if self.forward_dtype not in ("float32", "bfloat16", "float16"):
            raise HrmMlxError(f"forward_dtype must be float32, bfloat16 or float16, not {self.forward_dtype!r}")
        if self.loss_type not in ("stablemax_cross_entropy", "softmax_cross_entropy"):
            raise HrmMlxError(f"unknown loss_type {self.loss_type!r}")
        if self.hidden_size % self.num_heads:
            raise HrmMlxError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        try:
            self.mixer_args.check_layout(self.seq_len)
        except HrmMlxError as error:
            raise HrmMlxError(f"mixer {self.mixer!r}: {error}") from None

    @property
    def puzzle_emb_len(self) -> int:
        """Number of sequence positions the puzzle embedding occupies (ceil(puzzle_emb_ndim / hidden_size))."""
        return -(self.puzzle_emb_ndim // -self.hidden_size)

    def blocks(self, n: int) -> list[Block]:
        """n post-norm blocks with the configured token mixer."""
        return [Block(self.hidden_size, self.expansion, self.rms_norm_eps,
                      self.mixer_args.build(self.hidden_size, self.num_heads, self.seq_len, self.puzzle_emb_len))
                for _ in range(n)]


class Model(RecursiveModel):
    """HRM's two reasoning levels on the shared embedding, heads and initial states (recursive.py)."""

    def build_levels(self) -> None:
        self.H_level = ReasoningModule(self.args.blocks(self.args.H_layers))
        self.L_level = ReasoningModule(self.args.blocks(self.args.L_layers))

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

        return (z_H, z_L), *self.heads(z_H)

    def flops_per_step(self, batch_size: int) -> float:
        return flops_per_step(self.args, batch_size)


def flops_per_step(args: ModelArgs, batch_size: int) -> float:
    """Floating-point operations of one ACT step (eval: one model call), counting matmuls only (2 per
    multiply-add), the usual convention for achieved-FLOP/s figures."""
    block_calls = args.H_cycles * (args.L_cycles * args.L_layers + args.H_layers)
    per_block = block_flops(batch_size, args.seq_len + args.puzzle_emb_len, args.hidden_size, args.expansion,
                            mixer=args.mixer_args)
    return block_calls * per_block + head_flops(batch_size, args.seq_len, args.hidden_size, args.vocab_size)
