"""Our HRM against the official PyTorch code, number for number (fixtures: tools/make_hrm_fixtures.py)."""

import pytest
from mlx.utils import tree_flatten

import hrm_fixtures as fx
from hrm_mlx.models import hrm, layers
from parity import check_gradients, check_step, check_training_rollout, eval_rollout


@pytest.fixture(params=[(c, comp) for c in fx.CASES for comp in (False, True)], ids=lambda p: f"{p[0]}-{'compiled' if p[1] else 'eager'}")
def model(request):
    case, compiled = request.param
    m = fx.build_model(case)
    m.compiled = compiled
    return m


def test_parameter_count_matches_official_sudoku_model():
    args = hrm.ModelArgs(seq_len=81, vocab_size=11, num_puzzle_identifiers=1, H_cycles=2, L_cycles=2, H_layers=4,
                         L_layers=4, hidden_size=512, expansion=4, num_heads=8, pos_encodings="rope",
                         halt_max_steps=16, halt_exploration_prob=0.1, puzzle_emb_ndim=512)
    params = tree_flatten(hrm.Model(args).trainable_parameters())
    assert sum(v.size for _, v in params) == 27_275_266


@pytest.mark.slow
def test_eval_rollout_matches_official(model):
    for step in eval_rollout(model):
        check_step(*step)
    assert step[-1]["exact_accuracy"].item() >= 1  # the fixture makes one row exactly right


@pytest.mark.slow
def test_training_rollout_matches_official(model):
    check_training_rollout(model)


@pytest.mark.slow
def test_gradients_match_official(model):
    if model.compiled:
        pytest.skip("gradients are checked once, eagerly")
    check_gradients(model)


# -- a wrong model must fail the same checks -----------------------------------------------------------------

class PreNormBlock(layers.Block):
    def __call__(self, x, rope):
        x = x + self.self_attn(layers.rms_norm(x, self.norm_eps), rope)
        return x + self.mlp(layers.rms_norm(x, self.norm_eps))


class InputIntoH(hrm.Model):
    def __call__(self, state, inputs, puzzle_rows):
        x = self.input_embeddings(inputs, puzzle_rows)
        z_H, z_L = state
        for _ in range(self.args.H_cycles):
            for _ in range(self.args.L_cycles):
                z_L = self.L_level(z_L, z_H + x, self.rope)
            z_H = self.H_level(z_H, z_L + x, self.rope)
        q = self.q_head(z_H[:, 0])
        return (z_H, z_L), self.lm_head(z_H[:, self.puzzle_emb_len:]), q[:, 0], q[:, 1]


@pytest.mark.parametrize("variant", ["pre-norm", "x-into-H"])
def test_wrong_variant_fails_parity(variant, monkeypatch):
    if variant == "pre-norm":
        monkeypatch.setattr(layers.Block, "__call__", PreNormBlock.__call__)
        m = fx.build_model("rope")
    else:
        m = fx.build_model("rope", InputIntoH)
    with pytest.raises(AssertionError):
        for step in eval_rollout(m):
            check_step(*step)
