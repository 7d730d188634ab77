"""Building blocks shared by the model families: casted linear/embedding layers, parameter-free RMSNorm, RoPE,
SwiGLU, the post-norm transformer block and the token mixers behind one interface.

A token mixer maps hidden states [B, S, D] to [B, S, D], mixing information across positions; the blocks call
``mixer(x, rope)`` and never look inside, so a config switch swaps official attention for another mixer.
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn


def trunc_normal(shape: tuple[int, ...], std: float, lower: float = -2.0, upper: float = 2.0) -> mx.array:
    """JAX-style truncated normal: clipped at +-2 sigma', with sigma' corrected so the *truncated* samples have
    standard deviation ``std`` (the official init; torch's trunc_normal_ does not correct)."""
    if std == 0:
        return mx.zeros(shape)
    sqrt2 = math.sqrt(2.0)
    a, b = math.erf(lower / sqrt2), math.erf(upper / sqrt2)
    z = (b - a) / 2
    c = (2 * math.pi) ** -0.5
    pdf_u, pdf_l = c * math.exp(-0.5 * lower**2), c * math.exp(-0.5 * upper**2)
    comp_std = std / math.sqrt(1 - (upper * pdf_u - lower * pdf_l) / z - ((pdf_u - pdf_l) / z) ** 2)
    x = mx.erfinv(mx.random.uniform(a, b, shape)) * (sqrt2 * comp_std)
    return mx.clip(x, lower * comp_std, upper * comp_std)


def rms_norm(x: mx.array, eps: float) -> mx.array:
    """Parameter-free RMSNorm (no learnable scale), accumulated in float32 whatever the activation dtype."""
    return mx.fast.rms_norm(x, None, eps)


class CastedLinear(nn.Module):
    """Linear layer whose float32 master weight is cast to the activation dtype at use (mixed precision)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        super().__init__()
        self.weight = trunc_normal((out_features, in_features), std=1.0 / math.sqrt(in_features))
        if bias:
            self.bias = mx.zeros((out_features,))

    def __call__(self, x: mx.array) -> mx.array:
        y = x @ self.weight.astype(x.dtype).T
        if "bias" in self:
            y = y + self.bias.astype(x.dtype)
        return y


class CastedEmbedding(nn.Module):
    def __init__(self, num_embeddings: int, dims: int, init_std: float):
        super().__init__()
        self.weight = trunc_normal((num_embeddings, dims), std=init_std)

    def __call__(self, ids: mx.array, dtype: mx.Dtype) -> mx.array:
        return self.weight[ids].astype(dtype)


class Rope:
    """Rotary position embedding, rotate-half convention, positions 0..S-1 (no parameters)."""

    def __init__(self, head_dim: int, theta: float):
        self.head_dim = head_dim
        self.theta = theta

    def __call__(self, x: mx.array) -> mx.array:  # x: [B, heads, S, head_dim]
        return mx.fast.rope(x, self.head_dim, traditional=False, base=self.theta, scale=1.0, offset=0)


class Attention(nn.Module):
    """Non-causal multi-head softmax attention with a fused QKV projection (Q, K, V stacked along the output
    rows, each head a contiguous block of head_dim rows), as in the official HRM/TRM code."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.qkv_proj = CastedLinear(hidden_size, 3 * num_heads * self.head_dim)
        self.o_proj = CastedLinear(num_heads * self.head_dim, hidden_size)

    def __call__(self, x: mx.array, rope: Rope | None) -> mx.array:
        B, S, _ = x.shape
        qkv = self.qkv_proj(x).reshape(B, S, 3, self.num_heads, self.head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if rope is not None:
            q, k = rope(q), rope(k)
        out = mx.fast.scaled_dot_product_attention(q, k, v, scale=1.0 / math.sqrt(self.head_dim))
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(B, S, -1))


def swiglu_width(hidden_size: int, expansion: float) -> int:
    """Intermediate width of the official SwiGLU: 2/3 of expansion*hidden, rounded up to a multiple of 256."""
    return -(round(expansion * hidden_size * 2 / 3) // -256) * 256


class SwiGLU(nn.Module):
    def __init__(self, hidden_size: int, expansion: float):
        super().__init__()
        width = swiglu_width(hidden_size, expansion)
        self.gate_up_proj = CastedLinear(hidden_size, 2 * width)
        self.down_proj = CastedLinear(width, hidden_size)

    def __call__(self, x: mx.array) -> mx.array:
        gate, up = mx.split(self.gate_up_proj(x), 2, axis=-1)
        return self.down_proj(nn.silu(gate) * up)


def make_mixer(kind: str, hidden_size: int, num_heads: int) -> nn.Module:
    if kind == "attention":
        return Attention(hidden_size, num_heads)
    raise ValueError(f"unknown token mixer {kind!r}")


class Block(nn.Module):
    """Post-norm transformer block: x = norm(x + mix(x)); x = norm(x + mlp(x))."""

    def __init__(self, hidden_size: int, num_heads: int, expansion: float, norm_eps: float, mixer: str):
        super().__init__()
        self.self_attn = make_mixer(mixer, hidden_size, num_heads)  # official name, whatever the mixer
        self.mlp = SwiGLU(hidden_size, expansion)
        self.norm_eps = norm_eps

    def __call__(self, x: mx.array, rope: Rope | None) -> mx.array:
        x = rms_norm(x + self.self_attn(x, rope), self.norm_eps)
        return rms_norm(x + self.mlp(x), self.norm_eps)


class ReasoningModule(nn.Module):
    """A stack of blocks that first adds its input injection: z <- layers(z + injection)."""

    def __init__(self, blocks: list[Block]):
        super().__init__()
        self.layers = blocks

    def __call__(self, z: mx.array, injection: mx.array, rope: Rope | None) -> mx.array:
        z = z + injection
        for layer in self.layers:
            z = layer(z, rope)
        return z
