"""FLARE against the official PyTorch code (fixtures: tools/make_flare_fixtures.py), its chunked large-N path,
the key-padding mask and the token-mixer interface."""

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from hrm_mlx.models import flare, layers, mixers

FIXTURES = Path(__file__).parent / "fixtures" / "flare"
CASES = json.loads((FIXTURES / "cases.json").read_text())["cases"]
TOL = dict(rtol=1e-5, atol=1e-5)


def build(case: str):
    """Our module for a fixture case, with the official weights loaded; returns (module, tensors)."""
    meta = CASES[case]
    kwargs = dict(meta["kwargs"])
    if meta["source"].startswith("lra/"):  # the LRA copy names its K/V MLP options differently
        ratio = kwargs.pop("kv_proj_hidden_dim") / kwargs["channel_dim"]
        depth = kwargs.pop("num_layers_kv_proj", 3)
        kwargs.update(k_proj_mlp_ratio=ratio, v_proj_mlp_ratio=ratio, num_layers_k_proj=depth,
                      num_layers_v_proj=depth)
    cls = {"FLARE": flare.Flare, "FLAREBlock": flare.FlareBlock, "FLAREModel": flare.FlareModel}[meta["class"]]
    module = cls(**kwargs)
    tensors = mx.load(str(FIXTURES / f"{case}.safetensors"))
    state = {k.removeprefix("state."): v for k, v in tensors.items() if k.startswith("state.")}
    module.load_weights(list(flare.FlareModel.sanitize(state).items()), strict=True)
    return module, tensors


def run(module, tensors):
    mask = tensors["mask"].astype(mx.bool_) if "mask" in tensors else None
    return module(tensors["x"], mask)


def set_chunk(module, chunk_size):
    for _, sub in module.named_modules():
        if isinstance(sub, flare.Flare):
            sub.chunk_size = chunk_size


def close(ours, theirs, what, **tol):
    np.testing.assert_allclose(np.array(ours), np.array(theirs), **(tol or TOL), err_msg=what)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_matches_official(case):
    module, tensors = build(case)
    close(run(module, tensors), tensors["y"], case)


@pytest.mark.parametrize("case", list(CASES))
def test_chunked_path_matches_official(case):
    module, tensors = build(case)
    set_chunk(module, 16)  # 40 tokens -> chunks of 16, 16, 8 (the masked case has fully padded chunks)
    close(run(module, tensors), tensors["y"], case)


def test_wrong_variants_fail():
    module, tensors = build("layer")
    C, M = module.latent_q.shape
    good = run(module, tensors)
    module.attn_scale = module.head_dim**-0.5  # 1/sqrt(D) instead of the official 1.0
    assert np.abs(np.array(run(module, tensors) - good)).max() > 1e-2
    module.attn_scale = 1.0
    module.latent_q = module.latent_q.T.reshape(C, M)  # [M, C] layout read as [H, M, D]: a different model
    assert np.abs(np.array(run(module, tensors) - good)).max() > 1e-2


def test_masked_layer_semantics():
    module, tensors = build("layer_masked")
    x, mask = tensors["x"], tensors["mask"].astype(mx.bool_)
    lengths = CASES["layer_masked"]["lengths"]
    y = module(x, mask)
    assert np.isfinite(np.array(y)).all()
    for b, n in enumerate(lengths):
        close(y[b, n:], mx.broadcast_to(module.out_proj.bias, y[b, n:].shape), "padded rows = out_proj.bias")
        close(y[b, :n], module(x[b:b + 1, :n])[0], f"row {b}: masked = unmasked on the truncated sequence")
    # Unpadded outputs ignore whatever sits in the padded positions, on both paths.
    garbage = mx.where(mask[..., None], x, 1e3 * mx.random.normal(x.shape, key=mx.random.key(1)))
    for chunk in (None, 16):
        module.chunk_size = chunk
        y2 = module(garbage, mask)
        assert np.isfinite(np.array(y2)).all()
        close(mx.where(mask[..., None], y2, 0), mx.where(mask[..., None], y, 0), f"chunk {chunk}")
    # A sample with no real token at all still gives finite outputs.
    empty = mx.zeros(mask.shape, dtype=mx.bool_)
    for chunk in (None, 16):
        module.chunk_size = chunk
        assert np.isfinite(np.array(module(x, empty))).all()


@pytest.mark.slow
def test_large_n_chunked_equals_direct():
    mx.random.seed(3)
    layer = flare.Flare(32, num_heads=4, num_latents=16)
    layer.latent_q = 5 * layer.latent_q  # peaky softmaxes: the chunk merge must rescale correctly
    x = mx.random.normal((2, 6000, 32))
    mask = mx.arange(6000)[None] < mx.array([[6000], [3333]])
    for m in (None, mask):
        direct = layer(x, m)
        layer.chunk_size = 700  # 9 chunks, the last one partial
        chunked = layer(x, m)
        layer.chunk_size = None
        close(chunked, direct, f"mask {m is not None}")


def test_chunked_gradients_equal_direct():
    mx.random.seed(4)
    layer = flare.Flare(16, num_heads=2, num_latents=4)
    x = mx.random.normal((1, 300, 16))

    def loss(params, chunk):
        layer.update(params)
        layer.chunk_size = chunk
        return mx.sum(layer(x) ** 2)

    direct = dict(tree_flatten(mx.grad(loss)(layer.trainable_parameters(), None)))
    chunked = dict(tree_flatten(mx.grad(loss)(layer.trainable_parameters(), 64)))
    for name, g in direct.items():
        close(chunked[name], g, name, rtol=1e-4, atol=1e-5)


def test_mixer_interface_in_block():
    mixer = mixers.FlareConfig(num_latents=16).build(64, 4, seq_len=82, prefix_len=1)
    assert isinstance(mixer, flare.FlareMixer) and mixer.latent_q.shape == (64, 16)
    block = layers.Block(64, 4.0, 1e-5, mixers.FlareConfig(num_latents=16).build(64, 4, seq_len=82, prefix_len=1))
    assert isinstance(block.self_attn, flare.FlareMixer)
    names = {k for k, _ in tree_flatten(block.parameters())}
    assert {"self_attn.latent_q", "self_attn.k_proj.fcs.2.weight", "self_attn.out_proj.bias"} <= names
    rope = layers.Rope(16, 10000.0)
    for dtype in (mx.float32, mx.bfloat16):
        x = mx.random.normal((3, 82, 64)).astype(dtype)
        y = block(x, rope)
        assert y.shape == x.shape and y.dtype == dtype and np.isfinite(np.array(y.astype(mx.float32))).all()
        close(block(x, None).astype(mx.float32), y.astype(mx.float32), "rope is ignored")
    default = flare.FlareMixer(64, 4)
    assert default.num_latents == 64 and default(mx.zeros((1, 5, 64)), None).shape == (1, 5, 64)


def test_parameter_names_and_count():
    layer = flare.Flare(32, num_heads=4, num_latents=8)
    params = dict(tree_flatten(layer.parameters()))
    assert sum(v.size for v in params.values()) == flare.parameter_count(32, 8)
    _, tensors = build("layer")
    assert set(params) == {k.removeprefix("state.") for k in tensors if k.startswith("state.")}


def test_sanitize_maps_official_names():
    official = {"_orig_mod.blocks.0.ln1.weight": 1, "module.blocks.1.ln2.bias": 2, "out_proj.ln.weight": 3,
                "out_proj.mlp.fcs.0.bias": 4, "blocks.0.att.out_proj.weight": 5, "blocks.0.att.latent_q": 6,
                "in_proj.fc1.weight": 7}
    assert flare.FlareModel.sanitize(official) == {
        "blocks.0.norm1.weight": 1, "blocks.1.norm2.bias": 2, "out_proj.0.weight": 3, "out_proj.1.fcs.0.bias": 4,
        "blocks.0.att.out_proj.weight": 5, "blocks.0.att.latent_q": 6, "in_proj.fc1.weight": 7}
    model, tensors = build("model")  # a torch.compile'd checkpoint loads the same
    state = {f"_orig_mod.{k.removeprefix('state.')}": v for k, v in tensors.items() if k.startswith("state.")}
    model.load_weights(list(flare.FlareModel.sanitize(state).items()), strict=True)
    close(model(tensors["x"]), tensors["y"], "model from compiled names")


@pytest.mark.slow
def test_scaling_bench_returns_rows():
    from hrm_mlx import flare_bench

    result = flare_bench.scaling((256, 1024), channel_dim=16, num_heads=2, num_latents=8, repeats=1,
                                 dense_max_n=256)
    first, second = result["rows"]
    assert first["n"] == 256 and first["dense_ms"] > 0 and first["speedup"] > 0 and first["flare_growth"] is None
    assert second["dense_skipped"] == "limit" and second["dense_ms"] is None and second["flare_growth"] > 0
    assert result["targets"]["largest_n"] == 1024 and result["targets"]["largest_dense_n"] == 256
