"""The official optimisers and schedule against hand-computed updates."""

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from hrm_mlx import optim


def adam_atan2_reference(p, grads, lrs, b1, b2, wd):
    """The adam-atan2 CUDA kernel's update, written out in float64 numpy."""
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, (g, lr) in enumerate(zip(grads, lrs), 1):
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr / (1 - b1**t) * np.arctan2(m, np.sqrt(v) / math.sqrt(1 - b2**t))
    return p


def test_adam_atan2_matches_the_hand_computed_update():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) * s for s in (1.0, 1e-3, 10.0)]
    grads[1][0, 0] = 0.0  # atan2(0, 0) = 0: no epsilon needed where m = v = 0 ... after a first nonzero step
    lrs = [1e-2, 3e-2, 2e-2]
    model = nn.Linear(4, 3, bias=False)
    model.weight = mx.array(p0, dtype=mx.float32)
    opt = optim.AdamATan2(learning_rate=0.0, betas=(0.9, 0.95), weight_decay=0.1)
    for g, lr in zip(grads, lrs):
        opt.learning_rate = lr
        opt.update(model, {"weight": mx.array(g, dtype=mx.float32)})
    expected = adam_atan2_reference(p0, grads, lrs, 0.9, 0.95, 0.1)
    np.testing.assert_allclose(np.array(model.weight), expected, rtol=1e-5, atol=1e-6)
    # A first step moves each weight by lr * atan2(g(1-b1)/(1-b1), |g|) = lr * pi/4 * sign(g): not Adam's ~lr.
    model.weight = mx.zeros((3, 4))
    opt = optim.AdamATan2(learning_rate=0.1, betas=(0.9, 0.95), weight_decay=0.0)
    opt.update(model, {"weight": mx.array(grads[0], dtype=mx.float32)})
    one = 0.1 / 0.1 * np.arctan2(0.1 * grads[0], np.sqrt(0.05) * np.abs(grads[0]) / math.sqrt(0.05))
    np.testing.assert_allclose(np.array(model.weight), -one, rtol=1e-5)


def test_adam_atan2_zero_gradient_is_finite():
    model = nn.Linear(2, 2, bias=False)
    opt = optim.AdamATan2(learning_rate=0.1, weight_decay=0.0)
    before = np.array(model.weight)
    opt.update(model, {"weight": mx.zeros((2, 2))})
    np.testing.assert_array_equal(np.array(model.weight), before)  # atan2(0, 0) = 0, no NaN


def test_sign_sgd_updates_only_present_rows_with_summed_gradients():
    table = np.arange(15, dtype=np.float32).reshape(5, 3) / 10
    ids = np.array([3, 1, 3, 3])
    grads = np.array([[1.0, -2.0, 0.5], [0.0, 4.0, -1.0], [-3.0, 1.0, 0.25], [1.0, 0.5, -1.0]], dtype=np.float32)
    lr, wd = 0.01, 0.5
    out = np.array(optim.sign_sgd_rows(mx.array(table), mx.array(ids), mx.array(grads), lr, wd))
    expected = table.copy()
    for row in (1, 3):
        g = grads[ids == row].sum(0)  # row 3: [-1, -0.5, -0.25]; row 1: [0, 4, -1]
        expected[row] = table[row] * (1 - lr * wd) - lr * np.sign(g)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_array_equal(out[[0, 2, 4]], table[[0, 2, 4]])  # absent rows: no step, no decay
    assert out[1, 0] == table[1, 0] * (1 - lr * wd)  # sign(0) = 0: decay only


def test_schedule_is_the_official_formula():
    base = 1e-3
    assert optim.lr_at(1, base, 100, 1000, 0.1) == base / 100  # warmup from 0, first update is step 1
    assert optim.lr_at(50, base, 100, 1000, 0.1) == base / 2
    assert optim.lr_at(100, base, 100, 1000, 0.1) == base  # cos(0) = 1
    assert math.isclose(optim.lr_at(550, base, 100, 1000, 0.1), base * (0.1 + 0.9 * 0.5))  # halfway
    assert math.isclose(optim.lr_at(1000, base, 100, 1000, 0.1), base * 0.1)
    assert optim.lr_at(700, base, 100, 1000, 1.0) == base  # min ratio 1 (official default): constant
    assert optim.lr_at(5, base, 0, 10, 0.0) == base * 0.5 * (1 + math.cos(math.pi * 0.5))


def test_ema_update():
    shadow = {"a": mx.array([1.0, 2.0]), "b": [mx.array(0.0)]}
    params = {"a": mx.array([3.0, 2.0]), "b": [mx.array(10.0)]}
    out = optim.ema_update(shadow, params, 0.9)
    np.testing.assert_allclose(np.array(out["a"]), [1.2, 2.0], rtol=1e-6)
    np.testing.assert_allclose(np.array(out["b"][0]), 1.0, rtol=1e-6)
