"""The structured token mixers of the small CPU recipes: a convolution over the grid and attention masked to grid
peers, behind the official mixer interface mixer(x [B, S, D], rope) -> [B, S, D]."""

import dataclasses

import mlx.core as mx
import numpy as np
import pytest

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import build, layers, mixers

BASE = {"family": "trm", "seq_len": 81, "vocab_size": 11, "num_puzzle_identifiers": 1, "H_cycles": 1,
        "L_cycles": 2, "H_layers": 0, "L_layers": 1, "hidden_size": 16, "expansion": 2, "num_heads": 2,
        "pos_encodings": "rope", "halt_max_steps": 2, "halt_exploration_prob": 0.0, "puzzle_emb_ndim": 16,
        "puzzle_emb_len": 1, "forward_dtype": "float32"}


def test_sudoku_peer_mask():
    mask = layers.grid_peer_mask(9, 1)
    assert mask.shape == (82, 82)
    assert mask[0].all() and mask[:, 0].all()  # the prefix attends to all and is attended by all
    peers = mask[1:, 1:]
    assert peers.sum(1).tolist() == [21] * 81  # itself + 8 in its row + 8 in its column + 4 more in its box
    cell = 4 * 9 + 4  # centre cell: row 4, column 4, box 4
    expected = {r * 9 + c for r in range(9) for c in range(9) if r == 4 or c == 4 or (r // 3 == 1 and c // 3 == 1)}
    assert set(np.flatnonzero(peers[cell]).tolist()) == expected
    no_box = layers.grid_peer_mask(5, 0)  # 5 is not a square: rows and columns only
    assert no_box.sum(1).tolist() == [9] * 25


def test_grid_mask_attention_ignores_non_peers():
    mx.random.seed(0)
    mixer = mixers.GridMaskConfig().build(16, 2, seq_len=81, prefix_len=1)
    x = mx.random.normal((1, 82, 16))
    y = mixer(x, None)
    assert y.shape == (1, 82, 16)
    x2 = x.at[0, 1 + 80].add(5.0)  # change cell (8, 8): not a peer of cell (0, 0)
    y2 = mixer(x2, None)
    np.testing.assert_allclose(np.array(y2[0, 1]), np.array(y[0, 1]), atol=1e-6)  # cell (0, 0) unchanged
    assert not np.allclose(np.array(y2[0, 1 + 8]), np.array(y[0, 1 + 8]))  # cell (0, 8) is its column peer
    assert not np.allclose(np.array(y2[0, 0]), np.array(y[0, 0]))  # the prefix sees everything


@pytest.mark.parametrize("depthwise", [False, True])
def test_conv_mixer_is_local_and_pools_into_the_prefix(depthwise):
    mx.random.seed(0)
    mixer = mixers.ConvConfig(depthwise=depthwise).build(16, 2, seq_len=25, prefix_len=2)
    x = mx.random.normal((2, 27, 16))
    y = mixer(x, None)
    assert y.shape == (2, 27, 16)
    x2 = x.at[0, 2 + 2 * 5 + 2].add(3.0)  # centre cell (2, 2) of the 5x5 grid
    y2 = np.array(mixer(x2, None))
    changed = ~np.isclose(y2[0, 2:], np.array(y)[0, 2:], atol=1e-6).all(-1)
    rows, cols = np.divmod(np.flatnonzero(changed), 5)
    assert set(zip(rows.tolist(), cols.tolist())) == {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)}  # 3x3
    assert not np.allclose(y2[0, :2], np.array(y)[0, :2])  # the prefix pools over the grid
    np.testing.assert_allclose(y2[1], np.array(y)[1], atol=1e-6)  # rows of a batch do not mix


@pytest.mark.parametrize("mixer", ["conv", "grid_mask", "sudoku_attention"])
def test_models_with_structured_mixers_run_and_official_ones_do_not_change(mixer):
    model = build({**BASE, "mixer": mixer})
    from hrm_mlx.models import act

    batch = {"inputs": mx.ones((2, 81), dtype=mx.int32), "labels": mx.ones((2, 81), dtype=mx.int32),
             "puzzle_identifiers": mx.zeros((2,), dtype=mx.int32)}
    carry = act.reset_halted(model, act.initial_carry(model, batch), batch)
    _, outputs = act.forward(model, carry)
    assert outputs["logits"].shape == (2, 81, 11)
    official = build(BASE)
    assert type(official.L_level.layers[0].self_attn) is layers.Attention


def test_bad_mixer_configs_are_user_errors():
    with pytest.raises(HrmMlxError, match="unknown mixer"):
        build({**BASE, "mixer": "lstm"})
    with pytest.raises(HrmMlxError, match="not a"):
        build({**BASE, "mixer": "conv", "seq_len": 80})
    with pytest.raises(HrmMlxError, match="unknown config key 'mixer_args.num_latents'; known: grid_side, kernel, depthwise"):
        build({**BASE, "mixer": "conv", "mixer_args": {"num_latents": 8}})  # another mixer's option
    with pytest.raises(HrmMlxError, match="mixer_args.kernel must be odd"):
        build({**BASE, "mixer": "conv", "mixer_args": {"kernel": 4}})
    with pytest.raises(HrmMlxError, match="mixer_args.act must be one of 'gelu', 'silu'"):
        build({**BASE, "mixer": "flare", "mixer_args": {"act": "relu"}})


def test_every_flare_option_is_set_from_the_config():
    from hrm_mlx.models.flare import FlareMixer

    options = {"num_latents": 4, "attn_scale": "sqrt", "act": "silu", "num_layers_k_proj": 1, "num_layers_v_proj": -1,
               "k_proj_mlp_ratio": 2.0, "v_proj_mlp_ratio": 1.0, "qk_norm": True, "rmsnorm": True, "chunk_size": 32}
    assert set(options) == {f.name for f in dataclasses.fields(mixers.FlareConfig)}  # every option is covered
    model = build({**BASE, "mixer": "flare", "mixer_args": options})
    mixer = model.L_level.layers[0].self_attn
    assert isinstance(mixer, FlareMixer) and mixer.num_latents == 4 and mixer.chunk_size == 32
    assert mixer.attn_scale == pytest.approx(8 ** -0.5) and mixer.qk_norm and type(mixer.q_norm).__name__ == "RMSNorm"
    assert len(mixer.k_proj.fcs) == 1 and mixer.k_proj.fc1.weight.shape == (32, 16) and "fc" in mixer.v_proj
    assert model.args.mixer_args.to_dict() == options


def test_options_of_older_config_files_and_recipes_still_load():
    """config.json written before mixer_args kept the options of every mixer at the top level."""
    old = {**BASE, "mixer": "conv", "num_latents": 64, "grid_side": 0, "conv_kernel": 5, "conv_depthwise": True}
    args = build(old).args
    assert args.mixer_args == mixers.ConvConfig(grid_side=0, kernel=5, depthwise=True)
    from hrm_mlx.train import resolve_config

    recipe = {"task": "sudoku", "model": {**BASE, "mixer": "flare", "num_latents": 8}}
    assert resolve_config(recipe).model["mixer_args"] == {"num_latents": 8}
    with pytest.raises(HrmMlxError, match="model.conv_kernel is an option of another mixer"):
        resolve_config({"task": "sudoku", "model": {**BASE, "conv_kernel": 5}})
    with pytest.raises(HrmMlxError, match="unknown config key 'model.mixer_args.nope'"):
        resolve_config(recipe, ["model.mixer_args.nope=1"])


@pytest.mark.parametrize("family", ["hrm", "trm"])
def test_flare_mixer_swaps_the_attention_of_every_block_and_trains(family):
    from mlx.utils import tree_flatten

    from hrm_mlx.models import act
    from hrm_mlx.models.flare import FlareMixer

    config = dict(BASE, family=family, mixer="flare", mixer_args={"num_latents": 8})
    if family == "hrm":
        config.update(H_cycles=1, L_cycles=1, H_layers=1, L_layers=1)
    model = build(config)
    blocks = [b for level in ("H_level", "L_level") if level in model for b in model[level].layers]
    assert blocks and all(isinstance(b.self_attn, FlareMixer) for b in blocks)
    batch = {"inputs": mx.random.randint(1, 11, (3, 81)), "labels": mx.random.randint(1, 11, (3, 81)),
             "puzzle_identifiers": mx.zeros((3,), dtype=mx.int32)}
    carry = act.reset_halted(model, act.initial_carry(model, batch), batch)
    rows = model.puzzle_rows(carry["puzzle_identifiers"])

    def loss(params):
        model.update(params)
        return act.training_loss(model, carry, rows, mx.zeros((3,), dtype=mx.int32))[0]

    grads = dict(tree_flatten(mx.grad(loss)(model.trainable_parameters())))
    latent_grads = [g for name, g in grads.items() if "latent_q" in name]
    assert latent_grads and all(np.isfinite(np.array(g)).all() for g in grads.values())
    assert any(float(mx.abs(g).sum()) > 0 for g in latent_grads)
    _, outputs, loss_value, _ = act.make_eval_step(model)(act.initial_carry(model, batch), batch)
    assert outputs["logits"].shape == (3, 81, 11) and np.isfinite(loss_value.item())


@pytest.mark.parametrize("masked", [False, True])
def test_cpu_attention_equals_the_fused_kernel_in_value_and_gradient(masked):
    from hrm_mlx.models.layers import attention, grid_peer_mask

    q, k, v = (mx.random.normal((3, 2, 82, 8), key=mx.random.key(i)) for i in range(3))
    mask = mx.array(grid_peer_mask(9, 1)) if masked else None

    def loss(q, k, v, fused):
        return (attention(q, k, v, 0.35, mask, fused=fused) ** 2).sum()

    for fused in (False, True):
        value, grads = mx.value_and_grad(loss, argnums=(0, 1, 2))(q, k, v, fused)
        if fused:
            np.testing.assert_allclose(np.array(value), np.array(reference[0]), rtol=1e-5)
            for ours, theirs in zip(grads, reference[1]):
                np.testing.assert_allclose(np.array(ours), np.array(theirs), atol=2e-5)
        reference = (value, grads)
