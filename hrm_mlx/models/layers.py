"""Building blocks shared by the model families: casted linear/embedding layers, parameter-free RMSNorm, RoPE,
SwiGLU, the post-norm transformer block and the token mixers behind one interface.

A token mixer maps hidden states [B, S, D] to [B, S, D], mixing information across positions; the blocks call
``mixer(x, rope)`` and never look inside, so a config switch swaps official attention for another mixer
(hrm_mlx.models.mixers names them and holds their options).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from functools import partial

import mlx.core as mx
import mlx.nn as nn

from hrm_mlx import speed


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


# Attention on a CPU runs as matmuls around a compiled softmax: MLX builds compiled element-wise code natively
# (runtime.native_jit), while its CPU attention and softmax kernels use a generic exponential that dominates
# small models (B=64, 4 heads, 82 tokens: 36 -> 15 ms forward, 42 -> 19 ms with the gradient). Elsewhere (Metal,
# CUDA) MLX's fused kernel is the fast one. Both compute softmax(q k^T * scale) v in float32 and agree to 1e-6.


_FUSED: bool | None = None  # fused_kernels() forces the choice; None: by the device


def fused_attention_is_faster() -> bool:
    """Whether mx.fast.scaled_dot_product_attention beats explicit math here: on a GPU, not on the CPU. The one
    place the device picks the attention kernels (here and in FLARE's mix)."""
    return _FUSED if _FUSED is not None else mx.default_device() == mx.gpu


@contextmanager
def fused_kernels(enabled: bool = True):
    """Take the fused attention kernels (``enabled``) or the explicit math whatever the device, while the block
    runs: tests take the GPU's path on a CPU. Functions compiled inside keep the choice they were traced with."""
    global _FUSED
    previous, _FUSED = _FUSED, enabled
    try:
        yield
    finally:
        _FUSED = previous


@partial(mx.compile, shapeless=True)
def exp_minus_max(scores: mx.array) -> mx.array:
    """exp(s - max over the last axis): a softmax's numerator, one native loop when compiled."""
    return mx.exp(scores - scores.max(axis=-1, keepdims=True))


@mx.compile
def _softmax_rows(scores: mx.array) -> mx.array:
    weights = exp_minus_max(scores)
    return weights / weights.sum(axis=-1, keepdims=True)


@mx.compile
def _masked_softmax_rows(scores: mx.array, mask: mx.array) -> mx.array:
    return _softmax_rows(mx.where(mask, scores, -mx.inf))


@mx.compile
def _softmax_rows_vjp(probs: mx.array, cotangent: mx.array) -> mx.array:
    return probs * (cotangent - (cotangent * probs).sum(axis=-1, keepdims=True))


@mx.custom_function
def _softmax(scores: mx.array) -> mx.array:
    return _softmax_rows(scores)


@_softmax.vjp
def _softmax_vjp(primals, cotangent, probs):
    return _softmax_rows_vjp(probs, cotangent)


@mx.custom_function
def _masked_softmax(scores: mx.array, mask: mx.array) -> mx.array:
    return _masked_softmax_rows(scores, mask)


@_masked_softmax.vjp
def _masked_softmax_vjp(primals, cotangent, probs):
    return _softmax_rows_vjp(probs, cotangent), mx.zeros_like(primals[1])


def attention(q: mx.array, k: mx.array, v: mx.array, scale: float, mask: mx.array | None = None,
              fused: bool | None = None) -> mx.array:
    """Softmax attention over [B, heads, S, head_dim]; ``mask`` boolean [Sq, Sk], True where a query may attend.
    ``fused``: MLX's fused kernel (default: where it is the faster one; see above)."""
    if fused if fused is not None else fused_attention_is_faster():
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
    scores = (q @ k.swapaxes(-1, -2)).astype(mx.float32) * scale
    probs = _softmax(scores) if mask is None else _masked_softmax(scores, mask)
    return probs.astype(v.dtype) @ v


class Attention(nn.Module):
    """Non-causal multi-head softmax attention with a fused QKV projection (Q, K, V stacked along the output
    rows, each head a contiguous block of head_dim rows), as in the official HRM/TRM code."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.qkv_proj = CastedLinear(hidden_size, 3 * num_heads * self.head_dim)
        self.o_proj = CastedLinear(num_heads * self.head_dim, hidden_size)
        self._mask = None  # boolean [S, S], True where a query may attend to a key (subclasses set it)

    def __call__(self, x: mx.array, rope: Rope | None) -> mx.array:
        B, S, _ = x.shape
        # mx.split gives views; integer indexing (qkv[0]) would be a gather, and a scatter-add in the backward.
        qkv = self.qkv_proj(x).reshape(B, S, 3 * self.num_heads, self.head_dim).transpose(0, 2, 1, 3)
        q, k, v = mx.split(qkv, 3, axis=1)
        if rope is not None:
            q, k = rope(q), rope(k)
        out = attention(q, k, v, 1.0 / math.sqrt(self.head_dim), self._mask)
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(B, S, -1))


# Activations are compiled so that MLX fuses them into one JIT-built loop: on a CPU that runs the exponential several
# times faster than the stand-alone mx.sigmoid / mx.exp kernels and saves memory passes (SiLU·up of an official
# Sudoku block: 70 -> 31 ms). exp's argument is clipped where silu(x) is 0 to float32 precision anyway, so values
# and gradients stay finite.


@partial(mx.compile, shapeless=True)
def _silu(x: mx.array) -> mx.array:
    return x / (1.0 + mx.exp(-mx.maximum(x, -60.0)))


@partial(mx.compile, shapeless=True)
def _silu_times(gate: mx.array, up: mx.array) -> mx.array:
    return gate / (1.0 + mx.exp(-mx.maximum(gate, -60.0))) * up


def in_float32_range(fn):
    """Runs an activation in float32 for float16 inputs (exp(60) overflows float16)."""
    def run(*xs: mx.array) -> mx.array:
        if xs[0].dtype != mx.float16:
            return fn(*xs)
        return fn(*(x.astype(mx.float32) for x in xs)).astype(mx.float16)
    return run


silu = in_float32_range(_silu)
silu_times = in_float32_range(_silu_times)  # silu(gate) * up, SwiGLU's gating


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
        if speed.split_swiglu():  # contiguous gate and up for a vectorised SiLU·up (hrm_mlx.speed)
            weight = self.gate_up_proj.weight.astype(x.dtype)
            width = weight.shape[0] // 2
            gate, up = x @ weight[:width].T, x @ weight[width:].T
        else:
            gate, up = mx.split(self.gate_up_proj(x), 2, axis=-1)
        return self.down_proj(silu_times(gate, up))


class Block(nn.Module):
    """Post-norm transformer block: x = norm(x + mix(x)); x = norm(x + mlp(x)). ``mixer`` is the token mixer
    (hrm_mlx.models.mixers builds it from the config)."""

    def __init__(self, hidden_size: int, expansion: float, norm_eps: float, mixer: nn.Module):
        super().__init__()
        self.self_attn = mixer  # the official name, whatever the mixer
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


# -- structured token mixers (not in the official models) -------------------------------------------------------
# Both see the sequence as [prefix positions (puzzle embedding) | grid cells in row-major order] and exploit the
# grid: they make small models learn grid puzzles on a CPU in minutes. Config: mixer "conv" or "grid_mask" with
# their options (hrm_mlx.models.mixers).


def grid_layout(seq_len: int, grid_side: int = 0) -> int:
    """The side of the square grid behind ``seq_len`` positions (``grid_side`` when given)."""
    side = grid_side or math.isqrt(seq_len)
    if side * side != seq_len:
        raise ValueError(f"seq_len {seq_len} is not a {side}x{side} grid; set grid_side")
    return side


class GridConv(nn.Module):
    """A k x k convolution over the grid cells (full, or depthwise followed by a pointwise projection).
    Prefix and grid exchange information through learned pooling: the prefix positions attend (multi-head,
    softmax) over the whole sequence, and the mean of the prefix is projected and added to every cell.
    No weight depends on the grid's side, so it runs on square grids of any side (``size_free``): the side is
    read from the input; ``side`` (from the config's seq_len) is the canvas it was built for."""

    size_free = True

    def __init__(self, hidden_size: int, num_heads: int, side: int, prefix_len: int, kernel: int = 3,
                 depthwise: bool = False):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd and positive, got {kernel}")
        self._layout = (side, prefix_len, kernel, hidden_size if depthwise else 1)
        fan_in = kernel * kernel * (1 if depthwise else hidden_size)
        self.conv_weight = trunc_normal((hidden_size, kernel, kernel, 1 if depthwise else hidden_size),
                                        std=1.0 / math.sqrt(fan_in))
        if depthwise:
            self.pointwise = CastedLinear(hidden_size, hidden_size)
        if prefix_len:
            self.pool = PrefixPool(hidden_size, num_heads)
            self.prefix_to_grid = CastedLinear(hidden_size, hidden_size)

    def __call__(self, x: mx.array, rope: Rope | None) -> mx.array:
        _, P, kernel, groups = self._layout
        B, S, D = x.shape
        side = math.isqrt(S - P)
        if side * side != S - P:
            raise ValueError(f"{S - P} grid positions are not a square grid")
        grid = x[:, P:].reshape(B, side, side, D)
        mixed = mx.conv2d(grid, self.conv_weight.astype(x.dtype), padding=kernel // 2, groups=groups)
        mixed = mixed.reshape(B, side * side, D)
        if "pointwise" in self:
            mixed = self.pointwise(mixed)
        if not P:
            return mixed
        prefix = x[:, :P]
        mixed = mixed + self.prefix_to_grid(prefix.mean(axis=1, keepdims=True))
        pooled = self.pool(prefix, x)
        return mx.concatenate([pooled, mixed], axis=1)


class GridMaskAttention(Attention):
    """Attention in which a grid cell attends only to its peers: the cells of its row, its column and (when
    the side is a perfect square, as Sudoku's 9 = 3x3) its box, plus the prefix positions; the prefix
    positions attend to everything. Same weights and names as the official attention."""

    def __init__(self, hidden_size: int, num_heads: int, side: int, prefix_len: int):
        super().__init__(hidden_size, num_heads)
        self._mask = mx.array(grid_peer_mask(side, prefix_len))


def grid_peer_mask(side: int, prefix_len: int):
    """Boolean [S, S] (S = prefix_len + side^2): True where a query position may attend to a key position."""
    import numpy as np

    cells = np.arange(side * side)
    row, col = cells // side, cells % side
    box_side = math.isqrt(side)
    peers = (row[:, None] == row[None, :]) | (col[:, None] == col[None, :])
    if box_side * box_side == side and box_side > 1:
        box = (row // box_side) * box_side + col // box_side
        peers |= box[:, None] == box[None, :]
    S = prefix_len + side * side
    mask = np.ones((S, S), dtype=bool)
    mask[prefix_len:, prefix_len:] = peers
    return mask


class PrefixPool(nn.Module):
    """Learned pooling: the prefix positions attend (multi-head softmax, no positions) over the whole sequence."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.q_proj = CastedLinear(hidden_size, hidden_size)
        self.kv_proj = CastedLinear(hidden_size, 2 * hidden_size)
        self.o_proj = CastedLinear(hidden_size, hidden_size)

    def __call__(self, queries: mx.array, keys: mx.array) -> mx.array:
        B, Sq, D = queries.shape
        Sk = keys.shape[1]
        H, d, scale = self.num_heads, self.head_dim, 1.0 / math.sqrt(self.head_dim)
        q = self.q_proj(queries).reshape(B, Sq, H, d).transpose(0, 2, 1, 3)
        if speed.fold_pool_projections():  # the projections moved to the few queries' side (hrm_mlx.speed)
            w_k, w_v = mx.split(self.kv_proj.weight.astype(keys.dtype), 2)
            shared = keys[:, None]  # [B, 1, Sk, D]: one set of keys and values for every head
            pooled = attention(q @ w_k.reshape(H, d, D), shared, shared, scale)  # [B, H, Sq, D]
            out = pooled @ w_v.reshape(H, d, D).swapaxes(1, 2)
        else:
            kv = self.kv_proj(keys).reshape(B, Sk, 2 * H, d).transpose(0, 2, 1, 3)
            k, v = mx.split(kv, 2, axis=1)
            out = attention(q, k, v, scale)
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(B, Sq, -1))


# -- TRM's MLP-mixer block (mlp_t) ----------------------------------------------------------------------------

class TokenMLPBlock(nn.Module):
    """TRM's ``mlp_t`` block (the MLP-mixer variant used for Sudoku): the token mixer is a SwiGLU applied along
    the sequence axis (its width is the sequence length, prefix included), followed by a post-norm that
    normalises over the *sequence* axis per channel; then the usual channel SwiGLU with the usual norm over the
    hidden axis. Not a token mixer of ``Block``, because its first norm is not the hidden-axis norm of ``Block``.
    Official names: ``mlp_t`` (token MLP) and ``mlp`` (channel MLP). No positional information is needed (the
    token MLP's weights are position-specific), so ``rope`` is ignored."""

    def __init__(self, hidden_size: int, seq_len: int, expansion: float, norm_eps: float):
        super().__init__()
        self.mlp_t = SwiGLU(seq_len, expansion)
        self.mlp = SwiGLU(hidden_size, expansion)
        self.norm_eps = norm_eps

    def __call__(self, x: mx.array, rope: Rope | None = None) -> mx.array:
        t = x.swapaxes(1, 2)  # [B, D, S]: mix positions, normalise over positions
        x = rms_norm(t + self.mlp_t(t), self.norm_eps).swapaxes(1, 2)
        return rms_norm(x + self.mlp(x), self.norm_eps)
