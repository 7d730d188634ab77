"""The BLAS preload: MLX's matmuls agree with numpy through whatever BLAS was chosen, and the choice follows
HRM_MLX_BLAS, warning in one line when only the slow reference BLAS is left."""

import json
import os
import platform
import subprocess
import sys

import mlx.core as mx
import numpy as np
import pytest

from hrm_mlx import runtime

linux_only = pytest.mark.skipif(platform.system() != "Linux", reason="the BLAS preload is Linux-only")


def run_python(code: str, blas: str) -> subprocess.CompletedProcess:
    env = {**os.environ, runtime.ENV_VAR: blas}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_matmul_through_preloaded_blas_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 257), dtype=np.float32), rng.standard_normal((257, 190), dtype=np.float32)
    np.testing.assert_allclose(np.array(mx.array(a) @ mx.array(b)), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


@linux_only
def test_optimised_blas_is_found_when_the_cpu_extra_is_installed():
    if not runtime._mkl_candidates() and not runtime._openblas_candidates():
        pytest.skip("no optimised BLAS installed here")
    assert runtime.blas().name in ("mkl", "openblas")


CHOICE = "import hrm_mlx, json; from hrm_mlx import runtime; print(json.dumps(runtime.blas().__dict__))"


@linux_only
def test_none_keeps_reference_blas_silently():
    result = run_python(CHOICE, "none")
    assert json.loads(result.stdout)["name"] == "reference"
    assert result.stderr == ""


@linux_only
def test_unusable_blas_warns_in_one_line_and_still_works():
    code = CHOICE + "; import mlx.core as mx; print((mx.ones((4, 4)) @ mx.ones((4, 4))).sum().item())"
    result = run_python(code, "/nonexistent/libblas.so")
    lines = result.stdout.splitlines()
    assert json.loads(lines[0])["name"] == "reference"
    assert float(lines[1]) == 64.0
    assert len(result.stderr.strip().splitlines()) == 1 and "warning" in result.stderr


@linux_only
def test_the_warning_is_logged_so_a_program_can_route_or_silence_it():
    routed = run_python("import logging; logging.basicConfig(format='LOGGED %(name)s: %(message)s'); "
                        + CHOICE, "/nonexistent/libblas.so")
    assert routed.stderr.startswith("LOGGED hrm_mlx.runtime: hrm-mlx: warning: MLX runs on its slow reference BLAS")
    quiet = run_python("import logging; logging.getLogger('hrm_mlx').setLevel(logging.ERROR); " + CHOICE,
                       "/nonexistent/libblas.so")
    assert json.loads(quiet.stdout)["name"] == "reference" and quiet.stderr == ""


@linux_only
def test_importing_mlx_first_is_reported():
    result = run_python("import mlx.core, hrm_mlx, json; from hrm_mlx import runtime; print(runtime.blas().note)", "auto")
    assert "import hrm_mlx first" in result.stdout
