import os
import sys
from pathlib import Path

import pytest

import hrm_mlx  # noqa: F401  (first: preloads the optimised BLAS before any test imports mlx.core)

import mlx.core as mx  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # test helpers such as hrm_fixtures

USER_ENV = dict(os.environ)  # as the user started pytest: no test has run runtime.configure() yet


@pytest.fixture
def user_env() -> dict:
    """The environment a new `hrm-mlx` process starts with: a test that ran runtime.configure() in this process
    changed its PATH (the JIT wrapper), TMPDIR (the wrapper's kernel cache) and MLX's settings, which children
    inherit."""
    return dict(USER_ENV)


@pytest.fixture(autouse=True)
def compile_stays_on():
    """`hrm-mlx solve` turns mx.compile off for its process (runtime.configure); a test that runs it in-process
    must not leave it off for the tests after it."""
    yield
    if not os.environ.get("MLX_DISABLE_COMPILE"):
        mx.enable_compile()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty offline Hugging Face cache (HF_HOME) and an empty hrm-mlx cache, both in tmp."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HRM_MLX_CACHE", str(tmp_path / "hrm-cache"))
    return tmp_path / "hf" / "hub"
