"""FLARE: Fast Low-rank Attention Routing Engine (arXiv 2508.12594), as in vpuri3/FLARE.py at 4e05378.

A FLARE layer mixes N tokens through a small set of learned latent queries instead of an N x N score matrix.
With head h, H heads of width D = C / H and M latents per head (``num_latents``):

    Q_h = latent_q viewed row-major as [H, M, D]          (input-independent; each head owns M latents)
    K, V = k_proj(x), v_proj(x)                           (deep residual MLPs, split into heads [B, H, N, D])
    S_h = s * Q_h K_h^T                                   [M, N]; s = attn_scale, 1.0 unless "sqrt" (D^-1/2)
    Z_h = softmax_over_N(S_h) V_h                         encode: latents gather from the tokens  [M, D]
    Y_h = softmax_over_M(S_h^T) Z_h                       decode: tokens read from the latents    [N, D]
    out = out_proj(concat_h Y_h)

One score matrix serves both steps, normalised along the tokens for the encode and along the latents for the
decode. The cost is O(N * M * C) and no N x N matrix ever exists. On a GPU, up to one chunk of tokens, both steps
are single ``mx.fast.scaled_dot_product_attention`` calls (encode: the latents attend to the tokens; decode: the
tokens attend to the latents, K acting as queries). Otherwise the same math runs explicitly in float32 with a
compiled exponential (MLX's CPU SDPA is unfused and its stand-alone exp slow), and long sequences go through the
whole layer chunk by chunk (``chunk_tokens``): the encode keeps each chunk's maximum, softmax denominator and
unnormalised latent sums and merges them (log-sum-exp), the decode and the MLPs are row-wise, so only the input,
K and the output are full length: peak memory beyond the weights is O(N * C + chunk * H * M + H * M * D).

Parameter names follow the official state dict (``latent_q``, ``k_proj.fc1.weight``, ``blocks.0.att...``), so
``FlareModel.sanitize`` only strips wrapper prefixes and renames the paper-era layout. Weights are float32
masters cast to the activation dtype at use, as in the rest of hrm_mlx.

``FlareMixer`` is the layer behind the token-mixer interface of the HRM/TRM blocks: ``mixer(x, rope) -> y``
(FLARE has no positional encoding; ``rope`` is ignored).
"""

from __future__ import annotations

import math
from functools import partial

import mlx.core as mx
import mlx.nn as nn

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models.layers import exp_minus_max, fused_attention_is_faster, in_float32_range, silu

# Tokens per chunk are chosen so that one chunk's score block [B, H, M, chunk] holds at most this many elements
# (but at least 1024 tokens): with H * M = 1024 a chunk is 1024 tokens, whose activations stay in a CPU's L2 cache;
# larger chunks were slower per token on our CPU and need more memory.
MAX_SCORE_ELEMENTS = 1 << 20

# The GELU is compiled like layers.silu, for the same reason.
_GELU_C = 2.0 * math.sqrt(2.0 / math.pi)


@partial(mx.compile, shapeless=True)
def _gelu_tanh(x: mx.array) -> mx.array:
    # 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3); exp(-2u) clipped before it
    # overflows (gelu(x) is 0 to float32 precision there), so values and gradients stay finite.
    u = mx.maximum(_GELU_C * (x + 0.044715 * (x * x * x)), -60.0)
    return x / (1.0 + mx.exp(-u))


ACTIVATIONS = {"gelu": in_float32_range(_gelu_tanh), "silu": silu}  # official 'gelu' = GELU, tanh approximation


def _activation(name: str | None):
    name = name or "gelu"
    if name not in ACTIVATIONS:
        raise HrmMlxError(f"unknown FLARE activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def resolve_attn_scale(attn_scale: float | str, head_dim: int) -> float:
    """``attn_scale`` as a number: "one" -> 1.0 (the official default), "sqrt" -> head_dim ** -0.5."""
    if attn_scale == "one":
        return 1.0
    if attn_scale == "sqrt":
        return head_dim**-0.5
    if isinstance(attn_scale, str) or not attn_scale > 0:
        raise HrmMlxError(f"attn_scale must be a positive number, 'one' or 'sqrt', not {attn_scale!r}")
    return float(attn_scale)


# -- small layers (torch layouts, float32 masters cast at use) -------------------------------------------------

class Linear(nn.Module):
    """y = x W^T + b with W [out, in] as in torch. Init: N(0, std^2) weights, zero bias (the FLAREModel init)."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, std: float = 0.02):
        super().__init__()
        self.weight = std * mx.random.normal((out_dim, in_dim))
        if bias:
            self.bias = mx.zeros((out_dim,))

    def __call__(self, x: mx.array) -> mx.array:
        w = self.weight.astype(x.dtype).T
        if "bias" in self:
            return mx.addmm(self.bias.astype(x.dtype), x, w)
        return x @ w


class LayerNorm(nn.Module):
    def __init__(self, dims: int, eps: float = 1e-5):
        super().__init__()
        self.weight = mx.ones((dims,))
        self.bias = mx.zeros((dims,))
        self.eps = eps

    def __call__(self, x: mx.array) -> mx.array:
        return mx.fast.layer_norm(x, self.weight.astype(x.dtype), self.bias.astype(x.dtype), self.eps)


class RMSNorm(nn.Module):
    """torch.nn.RMSNorm with its default eps (machine epsilon of float32) and a learnable scale."""

    def __init__(self, dims: int, eps: float = float(mx.finfo(mx.float32).eps)):
        super().__init__()
        self.weight = mx.ones((dims,))
        self.eps = eps

    def __call__(self, x: mx.array) -> mx.array:
        return mx.fast.rms_norm(x, self.weight.astype(x.dtype), self.eps)


def make_norm(dims: int, rmsnorm: bool) -> nn.Module:
    return RMSNorm(dims) if rmsnorm else LayerNorm(dims)


class ResidualMLP(nn.Module):
    """The official residual MLP (fc1, ``num_layers`` hidden layers fcs.i, fc2), each hidden layer adding its
    activation to the stream:

        h = [x +] act(fc1(x));   h = h + act(fc_i(h)) for each i;   out = [h +] fc2(h)

    The input residual needs in_dim == hidden_dim and the output residual hidden_dim == out_dim (silently off
    otherwise, as in the official code). num_layers = -1 is a single linear layer ``fc``.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 2, act: str | None = None,
                 input_residual: bool = False, output_residual: bool = False):
        super().__init__()
        if num_layers < -1:
            raise HrmMlxError(f"num_layers must be at least -1, not {num_layers}")
        self.num_layers = num_layers
        if num_layers == -1:
            self.fc = Linear(in_dim, out_dim)
            self.residual = input_residual and output_residual and in_dim == out_dim
            return
        self.act = _activation(act)
        self.fc1 = Linear(in_dim, hidden_dim)
        self.fcs = [Linear(hidden_dim, hidden_dim) for _ in range(num_layers)]
        self.fc2 = Linear(hidden_dim, out_dim)
        self.input_residual = input_residual and in_dim == hidden_dim
        self.output_residual = output_residual and hidden_dim == out_dim

    def __call__(self, x: mx.array) -> mx.array:
        if self.num_layers == -1:
            return x + self.fc(x) if self.residual else self.fc(x)
        h = self.act(self.fc1(x))
        if self.input_residual:
            h = x + h
        for fc in self.fcs:
            h = h + self.act(fc(h))
        return h + self.fc2(h) if self.output_residual else self.fc2(h)


# -- the mixing itself --------------------------------------------------------------------------------------

def _mask_bias(mask: mx.array, dtype: mx.Dtype) -> mx.array:
    """Additive key-padding bias [B, 1, 1, N]: 0 for real tokens, a huge finite negative for padding (finite, so
    a sample without any real token still gives finite numbers instead of NaN)."""
    return mx.where(mask, 0.0, -0.5 * float(mx.finfo(dtype).max)).astype(dtype)[:, None, None, :]


def _with_ones(t: mx.array) -> mx.array:
    """[..., D] -> [..., D + 1] with a column of ones: p @ [t, 1] gives the weighted sum and the softmax
    denominator in one product (and p has one consumer, so a chunk's scores are freed as soon as it is done)."""
    return mx.concatenate([t, mx.ones((*t.shape[:-1], 1), dtype=t.dtype)], axis=-1)


def chunk_tokens(batch: int, num_heads: int, num_latents: int, chunk_size: int | None = None) -> int:
    """Tokens per chunk: ``chunk_size`` if given, else as many as keep one score block [B, H, M, chunk] within
    MAX_SCORE_ELEMENTS (at least 1024)."""
    return chunk_size or max(1024, MAX_SCORE_ELEMENTS // (batch * num_heads * num_latents))


def _encode_chunk(q, k, v, bias):
    """Unnormalised encode over one chunk of tokens, in float32: [B, H, M, D + 2] = (sum_n p v, sum_n p, max_n s)
    with p = exp(s - max_n s), s = q k^T (+ mask bias) [B, H, M, n]; q already carries the attention scale."""
    s = q @ k.astype(mx.float32).swapaxes(-1, -2)
    if bias is not None:
        s = s + bias
    m = mx.max(s, axis=-1, keepdims=True)
    return mx.concatenate([exp_minus_max(s) @ _with_ones(v.astype(mx.float32)), m], axis=-1)


def _merge_encodes(parts: list[mx.array]) -> mx.array:
    """Z [B, H, M, D] from the chunks' partial encodes, each rescaled to the global maximum (log-sum-exp)."""
    if len(parts) == 1:
        total = parts[0][..., :-1]
    else:
        parts = mx.stack(parts)
        m = parts[..., -1:]
        total = mx.sum(mx.exp(m - mx.max(m, axis=0)) * parts[..., :-1], axis=0)
    return total[..., :-1] / total[..., -1:]


def _decode_chunk(k, q, z1):
    """Decode of one chunk of tokens in float32: softmax over the latents of k q^T [B, H, n, M], times z
    (z1 = z with a ones column)."""
    out = exp_minus_max(k.astype(mx.float32) @ q.swapaxes(-1, -2)) @ z1
    return out[..., :-1] / out[..., -1:]


def _fused_mix(q, k, v, scale, mask):
    """Encode and decode as two ``mx.fast.scaled_dot_product_attention`` calls: the latents attend to the tokens
    (softmax over N), then the tokens attend to the latents with K as the queries (softmax over M)."""
    B, H, N, D = k.shape
    qb = mx.broadcast_to(q[None].astype(k.dtype), (B, H, q.shape[1], D))
    bias = None if mask is None else _mask_bias(mask, k.dtype)
    z = mx.fast.scaled_dot_product_attention(qb, k, v, scale=scale, mask=bias)
    return mx.fast.scaled_dot_product_attention(k, qb, z, scale=scale)


def _use_fused(n: int, chunk: int) -> bool:
    # MLX's CPU SDPA is the unfused reference; the explicit float32 path with the compiled exp is faster there.
    return n <= chunk and fused_attention_is_faster()


def flare_mix(q: mx.array, k: mx.array, v: mx.array, scale: float, mask: mx.array | None = None,
              chunk_size: int | None = None) -> mx.array:
    """The FLARE encode/decode on split heads. q: latents [H, M, D]; k, v: [B, H, N, D]; mask: [B, N] bool
    (True = real token) or None. Returns [B, H, N, D] in k's dtype; rows of padded tokens are 0 (as torch's SDPA
    gives for fully masked rows).

    On a GPU, up to one chunk of tokens (``chunk_tokens``) runs as two fused SDPA calls. Otherwise the same math
    runs explicitly in float32, chunk by chunk: the encode keeps each chunk's maximum, denominator and
    unnormalised sums and merges them; the decode is row-wise. No [N, N] matrix and, beyond the weights, at most
    a chunk's scores [B, H, M, chunk] at a time besides K and V."""
    B, H, N, D = k.shape
    chunk = chunk_tokens(B, H, q.shape[1], chunk_size)
    if _use_fused(N, chunk):
        y = _fused_mix(q, k, v, scale, mask)
    else:
        q32 = (q.astype(mx.float32) * scale)[None]  # [1, H, M, D]: the scale folded into the latents
        bias = None if mask is None else _mask_bias(mask, mx.float32)
        starts = range(0, N, chunk)
        z = _merge_encodes([_encode_chunk(q32, k[:, :, i:i + chunk], v[:, :, i:i + chunk],
                                          None if bias is None else bias[..., i:i + chunk]) for i in starts])
        z1 = _with_ones(z)
        y = mx.concatenate([_decode_chunk(k[:, :, i:i + chunk], q32, z1) for i in starts], axis=2).astype(k.dtype)
    if mask is not None:
        y = mx.where(mask[:, None, :, None], y, mx.zeros((), dtype=y.dtype))
    return y


# -- layer, block, model ------------------------------------------------------------------------------------

class Flare(nn.Module):
    """The FLARE layer (official class ``FLARE``): x [B, N, C] -> [B, N, C]; optional key-padding mask [B, N]
    (True = real token; the LRA variant's semantics: padded tokens are left out of the encode and their outputs
    are ``out_proj.bias``)."""

    def __init__(self, channel_dim: int, num_heads: int | None = 8, num_latents: int = 32,
                 attn_scale: float | str = 1.0, act: str | None = None, num_layers_k_proj: int = 3,
                 num_layers_v_proj: int = 3, k_proj_mlp_ratio: float = 1.0, v_proj_mlp_ratio: float = 1.0,
                 qk_norm: bool = False, rmsnorm: bool = False, chunk_size: int | None = None):
        super().__init__()
        num_heads = channel_dim // 8 if num_heads is None else num_heads
        if channel_dim % num_heads:
            raise HrmMlxError(f"channel_dim {channel_dim} is not divisible by num_heads {num_heads}")
        self.channel_dim, self.num_heads, self.num_latents = channel_dim, num_heads, num_latents
        self.head_dim = channel_dim // num_heads
        self.attn_scale = resolve_attn_scale(attn_scale, self.head_dim)
        self.chunk_size = chunk_size
        self.latent_q = 0.1 * mx.random.normal((channel_dim, num_latents))  # [C, M], read as [H, M, D]
        self.qk_norm = qk_norm
        if qk_norm:
            self.q_norm = make_norm(self.head_dim, rmsnorm)
            self.k_norm = make_norm(self.head_dim, rmsnorm)

        def proj(num_layers, ratio):
            return ResidualMLP(channel_dim, int(channel_dim * ratio), channel_dim, num_layers, act,
                               input_residual=True, output_residual=True)

        self.k_proj = proj(num_layers_k_proj, k_proj_mlp_ratio)
        self.v_proj = proj(num_layers_v_proj, v_proj_mlp_ratio)
        self.out_proj = Linear(channel_dim, channel_dim)

    def latents(self, dtype: mx.Dtype = mx.float32) -> mx.array:
        """The latent queries [H, M, D]: the [C, M] parameter reinterpreted in row-major order (not transposed)."""
        q = self.latent_q.astype(dtype).reshape(self.num_heads, self.num_latents, self.head_dim)
        return self.q_norm(q) if self.qk_norm else q

    def _keys_values(self, x: mx.array) -> tuple[mx.array, mx.array]:
        B, N, _ = x.shape

        def heads(t):
            return t.reshape(B, N, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

        k, v = heads(self.k_proj(x)), heads(self.v_proj(x))
        return (self.k_norm(k) if self.qk_norm else k), v

    def _output(self, y: mx.array, mask: mx.array | None) -> mx.array:
        """Merged heads [B, H, n, D] -> out_proj; rows of padded tokens enter as 0 (outputs = out_proj.bias)."""
        if mask is not None:
            y = mx.where(mask[:, None, :, None], y, mx.zeros((), dtype=y.dtype))
        B, _, n, _ = y.shape
        return self.out_proj(y.transpose(0, 2, 1, 3).reshape(B, n, self.channel_dim))

    def __call__(self, x: mx.array, mask: mx.array | None = None) -> mx.array:
        B, N, _ = x.shape
        chunk = chunk_tokens(B, self.num_heads, self.num_latents, self.chunk_size)
        q = self.latents(x.dtype)
        if N <= chunk:
            k, v = self._keys_values(x)
            return self._output(flare_mix(q, k, v, self.attn_scale, mask, chunk), mask)
        # Long sequences: the whole layer goes chunk by chunk over the tokens, so only K (needed again by the
        # decode), the input and the output are ever full length; V and every intermediate are chunk-sized.
        q32 = (q.astype(mx.float32) * self.attn_scale)[None]
        bias = None if mask is None else _mask_bias(mask, mx.float32)
        chunks = [slice(i, i + chunk) for i in range(0, N, chunk)]
        keys, parts = [], []
        for c in chunks:
            k, v = self._keys_values(x[:, c])
            keys.append(k)
            parts.append(_encode_chunk(q32, k, v, None if bias is None else bias[..., c]))
        z1 = _with_ones(_merge_encodes(parts))
        return mx.concatenate([self._output(_decode_chunk(k, q32, z1).astype(x.dtype), None if mask is None
                                            else mask[:, c]) for k, c in zip(keys, chunks)], axis=1)


class FlareMixer(Flare):
    """FLARE as the token mixer of the HRM/TRM blocks: ``mixer(x, rope) -> y``, [B, S, D] -> [B, S, D].
    ``rope`` is ignored (FLARE's latent routing has no positional encoding). Built from a model config by
    ``mixers.FlareConfig``, whose fields are the options below. Same parameters and names as ``Flare``
    (``latent_q``, ``k_proj``, ``v_proj``, ``out_proj``); the weights are float32 masters cast to the activation
    dtype (e.g. bfloat16) at use."""

    def __init__(self, hidden_size: int, num_heads: int, num_latents: int = 64, attn_scale: float | str = 1.0,
                 act: str | None = None, num_layers_k_proj: int = 3, num_layers_v_proj: int = 3,
                 k_proj_mlp_ratio: float = 1.0, v_proj_mlp_ratio: float = 1.0, qk_norm: bool = False,
                 rmsnorm: bool = False, chunk_size: int | None = None):
        super().__init__(hidden_size, num_heads, num_latents, attn_scale, act, num_layers_k_proj, num_layers_v_proj,
                         k_proj_mlp_ratio, v_proj_mlp_ratio, qk_norm, rmsnorm, chunk_size)

    def __call__(self, x: mx.array, rope=None, mask: mx.array | None = None) -> mx.array:
        return super().__call__(x, mask)


class FlareBlock(nn.Module):
    """Official ``FLAREBlock``, pre-norm: x = x + att(norm1(x)); x = x + mlp(norm2(x)). The FFN is the residual
    MLP of width ratio ``ffn_mlp_ratio`` (1.0) with its own identity paths."""

    def __init__(self, channel_dim: int, num_heads: int | None = None, num_latents: int | None = None,
                 attn_scale: float | str = 1.0, act: str | None = None, rmsnorm: bool = False,
                 num_layers_k_proj: int = 3, num_layers_v_proj: int = 3, k_proj_mlp_ratio: float = 1.0,
                 v_proj_mlp_ratio: float = 1.0, num_layers_ffn: int = 3, ffn_mlp_ratio: float = 1.0,
                 qk_norm: bool = False, chunk_size: int | None = None):
        super().__init__()
        if num_latents is None:
            raise HrmMlxError("FlareBlock needs num_latents")
        self.norm1 = make_norm(channel_dim, rmsnorm)
        self.norm2 = make_norm(channel_dim, rmsnorm)
        self.att = Flare(channel_dim, num_heads, num_latents, attn_scale, act, num_layers_k_proj, num_layers_v_proj,
                         k_proj_mlp_ratio, v_proj_mlp_ratio, qk_norm, rmsnorm, chunk_size)
        self.mlp = ResidualMLP(channel_dim, int(channel_dim * ffn_mlp_ratio), channel_dim, num_layers_ffn, act,
                               input_residual=True, output_residual=True)

    def __call__(self, x: mx.array, mask: mx.array | None = None) -> mx.array:
        x = x + self.att(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class FlareModel(nn.Module):
    """Official ``FLAREModel``: in_proj (residual MLP in_dim -> C), ``num_blocks`` FLARE blocks, out_proj
    (norm, then residual MLP C -> out_dim). Maps point features [B, N, in_dim] to [B, N, out_dim]."""

    def __init__(self, in_dim: int, out_dim: int, channel_dim: int = 64, num_blocks: int = 8,
                 num_heads: int | None = None, act: str | None = None, rmsnorm: bool = False,
                 out_proj_norm: bool = True, num_layers_in_out_proj: int = 2, attn_scale: float | str = 1.0,
                 num_latents: int | None = None, num_layers_k_proj: int = 3, num_layers_v_proj: int = 3,
                 k_proj_mlp_ratio: float = 1.0, v_proj_mlp_ratio: float = 1.0, num_layers_ffn: int = 3,
                 ffn_mlp_ratio: float = 1.0, qk_norm: bool = False, chunk_size: int | None = None):
        super().__init__()
        self.in_proj = ResidualMLP(in_dim, channel_dim, channel_dim, num_layers_in_out_proj, act,
                                   input_residual=False, output_residual=True)
        self.blocks = [FlareBlock(channel_dim, num_heads, num_latents, attn_scale, act, rmsnorm, num_layers_k_proj,
                                  num_layers_v_proj, k_proj_mlp_ratio, v_proj_mlp_ratio, num_layers_ffn,
                                  ffn_mlp_ratio, qk_norm, chunk_size) for _ in range(num_blocks)]
        self.out_proj = [make_norm(channel_dim, rmsnorm) if out_proj_norm else nn.Identity(),
                         ResidualMLP(channel_dim, channel_dim, out_dim, num_layers_in_out_proj, act,
                                     input_residual=True, output_residual=False)]

    def __call__(self, x: mx.array, mask: mx.array | None = None) -> mx.array:
        x = self.in_proj(x)
        for block in self.blocks:
            x = block(x, mask)
        for layer in self.out_proj:
            x = layer(x)
        return x

    @staticmethod
    def sanitize(weights: dict) -> dict:
        """Official state-dict names to ours: strips the ``torch.compile`` (``_orig_mod.``) and DDP (``module.``)
        prefixes and renames the paper-era layout (commit de5ba64: ``ln1``/``ln2``, ``out_proj.ln``/
        ``out_proj.mlp``). Current official names are ours already. Works for FLARE layers and blocks too."""
        renames = ((".ln1.", ".norm1."), (".ln2.", ".norm2."), (".out_proj.ln.", ".out_proj.0."),
                   (".out_proj.mlp.", ".out_proj.1."))
        out = {}
        for name, value in weights.items():
            while name.startswith(("_orig_mod.", "module.")):
                name = name.split(".", 1)[1]
            name = "." + name
            for old, new in renames:
                name = name.replace(old, new)
            out[name[1:]] = value
        return out


def parameter_count(channel_dim: int, num_latents: int) -> int:
    """Parameters of one FLARE layer with the default K/V MLPs: C*M + 11 * (C^2 + C)."""
    return channel_dim * num_latents + 11 * (channel_dim**2 + channel_dim)


__all__ = ["Flare", "FlareBlock", "FlareMixer", "FlareModel", "ResidualMLP", "chunk_tokens", "flare_mix",
           "parameter_count", "resolve_attn_scale"]
