"""The token mixers of the HRM/TRM blocks by name, each with its own typed options (a ``MixerConfig``).

A model's config names its mixer (``mixer``: "attention", the official one; "conv" and "grid_mask", structured
mixers for small CPU models; "flare", FLARE's latent routing) and gives that mixer's options in ``mixer_args``
(the fields of its config class below); a mixer receives only its own options. ``build`` makes the module for a
sequence of ``seq_len`` grid positions behind ``prefix_len`` puzzle-embedding positions.

config.json files written before ``mixer_args`` existed kept the options at the top level (num_latents,
grid_side, conv_kernel, conv_depthwise); ``options_from_legacy`` moves them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mlx.nn as nn

from hrm_mlx.config import Settings, setting
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import layers


@dataclass
class MixerConfig(Settings):
    kind: ClassVar[str] = "mixer option"

    def build(self, hidden_size: int, num_heads: int, seq_len: int, prefix_len: int) -> nn.Module:
        raise NotImplementedError

    def check_layout(self, seq_len: int) -> None:
        """Raise HrmMlxError when the mixer cannot lay out a sequence of ``seq_len`` grid positions."""

    def flops(self, batch_size: int, length: int, hidden_size: int) -> float:
        """Matmul FLOPs of one application on [batch_size, length, hidden_size]: attention's QKV and output
        projections, scores and values (an upper bound for the structured mixers)."""
        tokens = batch_size * length
        return 2 * tokens * hidden_size * 4 * hidden_size + 4 * batch_size * length * length * hidden_size


@dataclass
class AttentionConfig(MixerConfig):
    """The official multi-head softmax attention (no options)."""

    def build(self, hidden_size: int, num_heads: int, seq_len: int, prefix_len: int) -> nn.Module:
        return layers.Attention(hidden_size, num_heads)


@dataclass
class GridConfig(MixerConfig):
    """A mixer that sees the sequence as [prefix | grid cells in row-major order]."""

    grid_side: int = setting(0, "side of the square grid behind seq_len; 0: sqrt(seq_len)")

    def side(self, seq_len: int) -> int:
        try:
            return layers.grid_layout(seq_len, self.grid_side)
        except ValueError as error:
            raise HrmMlxError(str(error)) from None

    def check_layout(self, seq_len: int) -> None:
        self.side(seq_len)


@dataclass
class GridMaskConfig(GridConfig):
    """Attention in which a cell attends only to its row, column and (square sides) box peers."""

    def build(self, hidden_size: int, num_heads: int, seq_len: int, prefix_len: int) -> nn.Module:
        return layers.GridMaskAttention(hidden_size, num_heads, self.side(seq_len), prefix_len)


@dataclass
class ConvConfig(GridConfig):
    """A k x k convolution over the grid cells; no weight depends on the grid's side."""

    kernel: int = setting(3, "side of the convolution kernel (odd)", minimum=1)
    depthwise: bool = setting(False, "a depthwise convolution followed by a pointwise projection")

    def validate(self) -> None:
        if self.kernel % 2 == 0:
            raise HrmMlxError(f"mixer_args.kernel must be odd, not {self.kernel}")

    def build(self, hidden_size: int, num_heads: int, seq_len: int, prefix_len: int) -> nn.Module:
        return layers.GridConv(hidden_size, num_heads, self.side(seq_len), prefix_len, self.kernel, self.depthwise)


@dataclass
class FlareConfig(MixerConfig):
    """FLARE (hrm_mlx.models.flare.Flare): tokens mixed through learned latent queries, linear in the length."""

    num_latents: int = setting(64, "latent queries per head", minimum=1)
    attn_scale: float | str = setting(1.0, "score scale: a number, 'one' (official) or 'sqrt' (head_dim^-1/2)",
                                      choices=("one", "sqrt"))
    act: str | None = setting(None, "activation of the K/V MLPs: 'gelu' (null: the official GELU) or 'silu'",
                              choices=("gelu", "silu"))
    num_layers_k_proj: int = setting(3, "hidden layers of the K MLP (-1: one linear layer)", minimum=-1)
    num_layers_v_proj: int = setting(3, "hidden layers of the V MLP (-1: one linear layer)", minimum=-1)
    k_proj_mlp_ratio: float = setting(1.0, "width of the K MLP over the hidden size", minimum=0)
    v_proj_mlp_ratio: float = setting(1.0, "width of the V MLP over the hidden size", minimum=0)
    qk_norm: bool = setting(False, "normalise latents and keys per head")
    rmsnorm: bool = setting(False, "RMSNorm instead of LayerNorm for qk_norm")
    chunk_size: int | None = setting(None, "tokens per chunk of the linear-memory path; null: automatic",
                                     minimum=1)

    def validate(self) -> None:
        from hrm_mlx.models.flare import resolve_attn_scale

        resolve_attn_scale(self.attn_scale, 1)

    def build(self, hidden_size: int, num_heads: int, seq_len: int, prefix_len: int) -> nn.Module:
        from hrm_mlx.models.flare import FlareMixer

        return FlareMixer(hidden_size, num_heads, **self.to_dict())

    def flops(self, batch_size: int, length: int, hidden_size: int) -> float:
        # ten K/V MLP layers and out_proj, then encode and decode through M latents
        tokens = batch_size * length
        return 2 * tokens * 11 * hidden_size * hidden_size + 8 * tokens * self.num_latents * hidden_size


MIXERS: dict[str, type[MixerConfig]] = {"attention": AttentionConfig, "conv": ConvConfig, "grid_mask": GridMaskConfig,
                                        "sudoku_attention": GridMaskConfig, "flare": FlareConfig}

# Options that config.json kept at the top level before mixer_args: key -> (its mixer configs, option name).
LEGACY_OPTIONS = {"num_latents": ((FlareConfig,), "num_latents"), "grid_side": ((GridConfig,), "grid_side"),
                  "conv_kernel": ((ConvConfig,), "kernel"), "conv_depthwise": ((ConvConfig,), "depthwise")}


def mixer_class(name: str) -> type[MixerConfig]:
    if name not in MIXERS:
        raise HrmMlxError(f"unknown mixer {name!r}; known: {', '.join(MIXERS)}")
    return MIXERS[name]


def options_from_legacy(name: str, config: dict, strict: bool) -> dict:
    """``config`` (a model config dict) with its top-level legacy mixer options moved into ``mixer_args``.
    Options of another mixer are dropped from old files (they wrote every mixer's defaults) and are errors in
    a recipe (``strict``)."""
    legacy = {key: config[key] for key in LEGACY_OPTIONS if key in config}
    if not legacy:
        return config
    config = {key: value for key, value in config.items() if key not in legacy}
    options = dict(config.get("mixer_args") or {})
    cls = mixer_class(name)
    for key, value in legacy.items():
        owners, option = LEGACY_OPTIONS[key]
        if issubclass(cls, owners):
            options.setdefault(option, value)
        elif strict:
            raise HrmMlxError(f"model.{key} is an option of another mixer than {name!r}")
    config["mixer_args"] = options
    return config
