"""Every speed path (hrm_mlx.speed, hrm_mlx.runtime) against its plain path: the same values, or the same up to the
rounding of sums taken in another order; and the set-up's effects: none on import, no compiler run when solving."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from hrm_mlx import bench, runtime, speed
from hrm_mlx.models import act, layers
from hrm_mlx.train import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def two_cores(monkeypatch):
    """The speed paths on, with two row groups whatever this machine's core count."""
    monkeypatch.setenv(speed.SWITCH, "1")
    monkeypatch.setattr(speed, "cores", lambda: 2)


def recipe_model(name: str, **model) -> tuple[dict, dict]:
    target = bench.resolve_model(name)
    return {**target.config, **model}, {k: v for k, v in target.train.items() if k != "data"}


SMALL_HRM = dict(hidden_size=64, num_heads=4, H_layers=1, L_layers=1, puzzle_emb_ndim=64, halt_max_steps=4,
                 forward_dtype="float32")


def train_three_steps(name: str, model: dict, batch_size: int = 16) -> dict:
    config, settings = recipe_model(name, **model)
    model = bench.build_model(config)
    trainer = Trainer(model, TrainConfig.from_dict({**settings, "global_batch_size": batch_size}, "train."),
                      total_steps=100, group=mx.distributed.init())
    carry = trainer.initial_carry(config["seq_len"])
    for step in range(1, 4):
        carry, metrics = trainer.step(step, carry, bench.random_batch(config, batch_size, seed=step))
    out = {f"param.{k}": np.array(v) for k, v in tree_flatten(model.parameters())}
    out.update({f"carry.{k}": np.array(v) for k, v in tree_flatten(carry)})
    out.update({f"metric.{k}": np.array(v) for k, v in metrics.items()})
    return out


@pytest.mark.parametrize("recipe, model", [("sudoku-cpu", {}), ("maze-cpu", {}),
                                           ("hrm-sudoku-extreme-1k-laptop", SMALL_HRM)])  # HRM: a Q-target call
@pytest.mark.slow
def test_training_steps_in_row_groups_equal_the_plain_steps(recipe, model, two_cores, monkeypatch):
    fast = train_three_steps(recipe, model)
    monkeypatch.setenv(speed.SWITCH, "0")
    plain = train_three_steps(recipe, model)
    assert fast.keys() == plain.keys()
    for key in plain:
        if plain[key].dtype.kind in "biu":  # halted rows, steps, data, counts: exactly equal
            np.testing.assert_array_equal(fast[key], plain[key], err_msg=key)
        else:  # weights as in test_compiled_step_equals_eager; the states after 3 steps through 8 (TRM) or 16
            # (HRM) blocks carry the weights' last-bit differences further (a wrong row would be off by ~1)
            atol = 1e-6 if key.startswith("param.") else 5e-5
            np.testing.assert_allclose(fast[key], plain[key], rtol=1e-5, atol=atol, err_msg=key)


@pytest.mark.slow
def test_eval_steps_in_row_groups_equal_the_plain_steps(two_cores, monkeypatch):
    config, _ = recipe_model("sudoku-cpu")
    batch = bench.random_batch(config, 24)  # three rows over a multiple of 8: groups of 12

    def run():
        model = bench.build_model(config)
        step = act.make_eval_step(model)
        carry = act.initial_carry(model, batch)
        for _ in range(2):
            carry, outputs, loss, metrics = step(carry, batch)
        return {**{f"out.{k}": np.array(v) for k, v in outputs.items()}, "loss": np.array(loss),
                **{f"metric.{k}": np.array(v) for k, v in metrics.items()}}

    assert speed.row_groups(24) == 2
    fast = run()
    monkeypatch.setenv(speed.SWITCH, "0")
    assert speed.row_groups(24) == 1
    plain = run()
    for key in plain:
        np.testing.assert_allclose(fast[key], plain[key], rtol=1e-5, atol=1e-5, err_msg=key)


def test_split_swiglu_gives_the_same_values_and_close_gradients(monkeypatch):
    mx.random.seed(3)
    mlp = layers.SwiGLU(64, 4)
    x = mx.random.normal((4, 9, 64))

    def value_and_grads():
        def loss(params, x):
            mlp.update(params)
            return (mlp(x) * x).sum()
        value, grads = mx.value_and_grad(loss, argnums=(0, 1))(mlp.trainable_parameters(), x)
        return np.array(mlp(x)), [np.array(g) for _, g in tree_flatten(grads)]

    monkeypatch.setenv(speed.SWITCH, "1")
    assert speed.split_swiglu() == (mx.default_device() == mx.cpu)
    fast_out, fast_grads = value_and_grads()
    monkeypatch.setenv(speed.SWITCH, "0")
    plain_out, plain_grads = value_and_grads()
    np.testing.assert_array_equal(fast_out, plain_out)
    for fast, plain in zip(fast_grads, plain_grads):
        np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5)


def test_folded_prefix_pooling_gives_close_values_and_gradients(monkeypatch):
    mx.random.seed(4)
    pool = layers.PrefixPool(64, 4)
    x = mx.random.normal((3, 1 + 81, 64))

    def value_and_grads():
        def loss(params, x):
            pool.update(params)
            return (pool(x[:, :1], x) * x[:, :1]).sum()
        value, grads = mx.value_and_grad(loss, argnums=(0, 1))(pool.trainable_parameters(), x)
        return np.array(pool(x[:, :1], x)), [np.array(g) for _, g in tree_flatten(grads)]

    monkeypatch.setenv(speed.SWITCH, "1")
    assert speed.fold_pool_projections() == (mx.default_device() == mx.cpu)
    fast_out, fast_grads = value_and_grads()
    monkeypatch.setenv(speed.SWITCH, "0")
    plain_out, plain_grads = value_and_grads()
    np.testing.assert_allclose(fast_out, plain_out, rtol=1e-5, atol=1e-6)
    assert len(fast_grads) == len(plain_grads) == 4  # three weights and the input
    for fast, plain in zip(fast_grads, plain_grads):
        np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5)


def test_row_groups_follow_cores_and_batch(monkeypatch):
    monkeypatch.setenv(speed.SWITCH, "1")
    monkeypatch.setattr(speed, "cores", lambda: 4)
    on_cpu = mx.default_device() == mx.cpu
    assert speed.row_groups(64) == (4 if on_cpu else 1)
    assert speed.row_groups(16) == (2 if on_cpu else 1)  # at least MIN_GROUP_ROWS rows each
    assert speed.row_groups(1) == 1
    monkeypatch.setenv(speed.SWITCH, "0")
    assert speed.row_groups(64) == 1


def test_row_groups_cut_uneven_batches_and_pass_none_through():
    tree = {"a": mx.arange(10), "b": None}
    parts = speed.by_row_groups(lambda t: t, 3, tree)
    assert [p["a"].tolist() for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert all(p["b"] is None for p in parts)
    assert speed.join_rows(parts)["a"].tolist() == list(range(10))
    assert speed.sum_groups([{"x": mx.array(1.0)}, {"x": mx.array(2.5)}])["x"].item() == 3.5


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})


KERNELS = """
import sys
import hrm_mlx
from hrm_mlx import runtime
setup = runtime.configure()
import mlx.core as mx, numpy as np
from hrm_mlx.models import layers
mx.random.seed(0)
x, y = mx.random.normal((37, 129)) * 30, mx.random.normal((37, 129))
fn = mx.compile(lambda x, y: (layers.silu_times(x, y), mx.softmax(x * y, axis=-1), x * y + x / (y + 3)))
np.savez(sys.argv[1] if len(sys.argv) > 1 else "{out}", *[np.array(a) for a in fn(x, y)])
print(setup.jit_compiler)
"""


@pytest.mark.skipif(sys.platform != "linux" or shutil.which("g++") is None, reason="MLX's CPU JIT on Linux")
def test_the_jit_wrapper_is_written_once_atomically_and_goes_first_on_path(tmp_path):
    code = ("import os; import hrm_mlx; from hrm_mlx import runtime; wrapper = runtime.native_jit(); "
            "print(wrapper); print(os.environ['PATH'].split(os.pathsep)[0]); print(os.environ['TMPDIR'])")
    first = run_python(code, HRM_MLX_CACHE=str(tmp_path / "cache"))
    assert first.returncode == 0, first.stderr
    wrapper, on_path, kernels = first.stdout.split()
    wrapper = Path(wrapper)
    assert wrapper.parent.parent == tmp_path / "cache" / "jit" and str(wrapper.parent) == on_path == kernels
    script = wrapper.read_text()
    assert script.startswith("#!/bin/sh\n") and os.access(wrapper, os.X_OK)
    wrapper.write_text("stale")  # another version's wrapper: written anew
    again = run_python(code, HRM_MLX_CACHE=str(tmp_path / "cache"))
    assert again.stdout == first.stdout and wrapper.read_text() == script and os.access(wrapper, os.X_OK)
    assert sorted(p.name for p in wrapper.parent.iterdir()) == ["g++"]  # no temporary file left


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux" or shutil.which("g++") is None, reason="MLX's CPU JIT on Linux")
def test_native_jit_kernels_are_bitwise_equal_to_mlx_own_build(tmp_path):
    """The wrapper's flags vectorise MLX's kernels without changing a bit of their results."""
    outputs = {}
    for mode, switch in (("plain", "0"), ("native", "1")):
        out = tmp_path / f"{mode}.npz"
        (tmp_path / mode).mkdir()
        result = run_python(KERNELS.replace("{out}", str(out)), TMPDIR=str(tmp_path / mode),
                            HRM_MLX_CACHE=str(tmp_path / mode / "cache"), **{speed.SWITCH: switch})
        assert result.returncode == 0, result.stderr
        assert list((tmp_path / mode).rglob("*.so")), "MLX built no kernel"
        outputs[mode] = (np.load(out), result.stdout.strip())
    assert outputs["plain"][1] == "None" and not (tmp_path / "plain" / "cache").exists()
    jit = tmp_path / "native" / "cache" / "jit"
    assert outputs["native"][1].startswith(str(jit))
    assert list(jit.rglob("compiled_preamble.h.gch")), "no precompiled preamble"
    assert list(jit.rglob("mlx/*/cpu/*.so")), "the kernels are not in the wrapper's own cache"
    plain, native = outputs["plain"][0], outputs["native"][0]
    for key in plain.files:
        np.testing.assert_array_equal(native[key], plain[key], err_msg=key)


def test_importing_hrm_mlx_changes_nothing_but_the_blas(tmp_path):
    code = ("import os, json; before = dict(os.environ); import hrm_mlx, mlx.core; "
            "print(json.dumps({k: v for k, v in os.environ.items() if before.get(k) != v}))")
    result = run_python(code, HRM_MLX_CACHE=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {}
    assert not (tmp_path / "cache").exists()


def test_configure_sets_one_blas_thread_per_stream_and_the_scheduling_width():
    code = ("import os, json, ctypes; import hrm_mlx; from hrm_mlx import runtime, speed; s = runtime.configure(); "
            "get = getattr(runtime._library, 'MKL_Get_Max_Threads', None); "
            "print(json.dumps([s.blas_threads, get() if get else None, os.environ.get('MLX_BFS_MAX_WIDTH')]))")
    result = run_python(code, **{speed.SWITCH: "1"})
    assert result.returncode == 0, result.stderr
    threads, mkl_threads, width = json.loads(result.stdout)
    if runtime.blas().name in ("mkl", "openblas") and mx.default_device() == mx.cpu:
        assert threads == 1 and width == str(runtime.SCHEDULING_WIDTH)
        assert mkl_threads in (1, None)


@pytest.mark.slow
@pytest.mark.skipif(mx.default_device() != mx.cpu, reason="compiling for solving is skipped on a CPU only")
def test_solving_on_a_cpu_builds_no_kernel(tmp_path):
    """A first answer never waits for the JIT compiler: `hrm-mlx solve` runs with mx.compile off on a CPU."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "HRM_MLX_CACHE": str(tmp_path / "cache"), speed.SWITCH: "1"}
    result = subprocess.run([sys.executable, "-m", "hrm_mlx", "solve", str(ROOT / "examples" / "sudoku.txt"),
                             "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[0])["solved"]
    assert not list(tmp_path.rglob("*.so")), "a kernel was built"


def test_root_help_lists_every_command_without_importing_a_command_module_numpy_or_mlx():
    """`hrm-mlx --help` stays fast: no command module (their options list the tasks, which import numpy) and no
    mlx is imported for the listing."""
    from hrm_mlx.cli.main import COMMANDS

    code = ("import sys; sys.argv = ['hrm-mlx', '--help']; from hrm_mlx.cli.main import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "from hrm_mlx.cli.main import COMMANDS\n"
            "modules = ['numpy', 'mlx.core', 'hrm_mlx.tasks'] + [f'hrm_mlx.cli.{m}' for m, _ in COMMANDS.values()]\n"
            "print(sorted(m for m in modules if m in sys.modules))")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    *listing, imported = result.stdout.strip().splitlines()
    assert imported == "[]"
    for command in COMMANDS:
        assert any(line.strip("│ ").startswith(command + " ") for line in listing), command
