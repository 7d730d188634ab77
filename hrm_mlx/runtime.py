"""Process-wide runtime set-up that must happen before the first ``import mlx.core``.

On Linux the ``mlx[cpu]`` wheel links a slow reference BLAS (~6 GFLOP/s). MLX resolves its ``cblas_*`` calls
through the dynamic linker, so loading an optimised BLAS into the global symbol scope first makes every matmul
use it (~30x faster). This module does that once, on import of ``hrm_mlx``.

``HRM_MLX_BLAS`` chooses: ``auto`` (default: MKL from the ``cpu`` extra, else a system OpenBLAS), ``mkl``,
``openblas``, ``none`` (keep MLX's own BLAS, no warning), or a path to a shared library exporting cblas_*.

Second, ``mx.compile`` on the CPU backend turns fused element-wise graphs into C++ that it builds with the ``g++``
found on PATH, without ``-march``: no hardware FMA and no wide vectors, so its exp (behind SiLU and softmax) runs
as one library call per element. Putting a ``g++`` that adds ``-march=native`` first on PATH makes those kernels
~4x faster with identical results (the kernels use no fast-math, and their fma calls round the same either way).
``HRM_MLX_NATIVE_JIT=0`` turns this off.
"""

from __future__ import annotations

import ctypes
import glob
import os
import platform
import shutil
import site
import sys
import tempfile
from dataclasses import dataclass

ENV_VAR = "HRM_MLX_BLAS"
NATIVE_JIT_VAR = "HRM_MLX_NATIVE_JIT"

_OPENBLAS_PATTERNS = (
    "/usr/lib/{arch}-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/{arch}-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/{arch}-linux-gnu/openblas-openmp/libblas.so.3",
    "/usr/lib/{arch}-linux-gnu/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
)


@dataclass(frozen=True)
class BlasChoice:
    name: str  # "mkl", "openblas", "custom", "reference" or "platform"
    path: str | None
    note: str = ""


_choice: BlasChoice | None = None


def _prefix_lib_dirs() -> list[str]:
    prefixes = [sys.prefix, sys.base_prefix, getattr(site, "USER_BASE", None) or ""]
    return [os.path.join(p, "lib") for p in dict.fromkeys(prefixes) if p]


def _mkl_candidates() -> list[str]:
    found = []
    for lib_dir in _prefix_lib_dirs():
        found += sorted(glob.glob(os.path.join(lib_dir, "libmkl_rt.so*")), reverse=True)
    return found


def _openblas_candidates() -> list[str]:
    arch = platform.machine()
    return [p.format(arch=arch) for p in _OPENBLAS_PATTERNS if os.path.exists(p.format(arch=arch))]


def _try_load(path: str) -> bool:
    try:
        lib = ctypes.CDLL(path, mode=os.RTLD_GLOBAL)
    except OSError:
        return False
    return hasattr(lib, "cblas_sgemm")


def _select(request: str) -> BlasChoice:
    if platform.system() != "Linux":
        return BlasChoice("platform", None, "MLX uses the platform's BLAS (Accelerate on macOS)")
    if request in ("none", "off", "0", "false"):
        return BlasChoice("reference", None, f"disabled by {ENV_VAR}={request}")
    if "mlx.core" in sys.modules:
        return BlasChoice("reference", None, "mlx.core was imported before hrm_mlx; import hrm_mlx first")
    if request not in ("auto", "mkl", "openblas"):
        if _try_load(request):
            return BlasChoice("custom", request)
        return BlasChoice("reference", None, f"{ENV_VAR}={request} is not a loadable BLAS with cblas_sgemm")
    kinds = {"auto": ("mkl", "openblas"), "mkl": ("mkl",), "openblas": ("openblas",)}[request]
    finders = {"mkl": _mkl_candidates, "openblas": _openblas_candidates}
    for kind in kinds:
        for path in finders[kind]():
            if _try_load(path):
                return BlasChoice(kind, path)
    return BlasChoice("reference", None, f"no optimised BLAS found for {ENV_VAR}={request}")


def preload_blas() -> BlasChoice:
    """Load the best available BLAS into the global symbol scope (idempotent) and return what was chosen."""
    global _choice
    if _choice is None:
        request = os.environ.get(ENV_VAR, "auto").strip() or "auto"
        _choice = _select(request.lower() if request.lower() in ("auto", "mkl", "openblas", "none", "off", "0", "false") else request)
        silenced = request.lower() in ("none", "off", "0", "false")
        if _choice.name == "reference" and not silenced:
            sys.stderr.write(
                f"hrm-mlx: warning: MLX runs on its slow reference BLAS ({_choice.note}); "
                f"pip install 'hrm-mlx[cpu]' (MKL) or apt-get install libopenblas0-pthread, "
                f"or set {ENV_VAR}=none to silence this\n"
            )
    return _choice


def blas() -> BlasChoice:
    """The BLAS chosen at import time."""
    return preload_blas()


def enable_native_jit() -> str | None:
    """Put a ``g++ -march=native`` wrapper first on PATH for MLX's CPU JIT (Linux); returns its folder or None."""
    if platform.system() != "Linux" or os.environ.get(NATIVE_JIT_VAR, "1") == "0":
        return None
    compiler = shutil.which("g++")
    if compiler is None or os.path.basename(os.path.dirname(compiler)) == "hrm-mlx-jit":
        return None
    folder = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hrm-mlx", "hrm-mlx-jit")
    wrapper = os.path.join(folder, "g++")
    script = f'#!/bin/sh\nexec "{compiler}" -march=native "$@"\n'
    try:
        os.makedirs(folder, exist_ok=True)
        if not os.path.exists(wrapper) or open(wrapper).read() != script:
            fd, tmp = tempfile.mkstemp(dir=folder)
            with os.fdopen(fd, "w") as f:
                f.write(script)
            os.chmod(tmp, 0o755)
            os.replace(tmp, wrapper)
    except OSError:
        return None  # read-only home: keep MLX's default build, only slower
    os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")
    return folder
