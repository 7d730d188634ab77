"""Process-wide runtime set-up that must happen before the first ``import mlx.core``.

On Linux the ``mlx[cpu]`` wheel links a slow reference BLAS (~6 GFLOP/s). MLX resolves its ``cblas_*`` calls
through the dynamic linker, so loading an optimised BLAS into the global symbol scope first makes every matmul
use it (~30x faster). This module does that once, on import of ``hrm_mlx``.

``HRM_MLX_BLAS`` chooses: ``auto`` (default: MKL from the ``cpu`` extra, else a system OpenBLAS), ``mkl``,
``openblas``, ``none`` (keep MLX's own BLAS, no warning), or a path to a shared library exporting cblas_*.
"""

from __future__ import annotations

import ctypes
import glob
import os
import platform
import site
import sys
from dataclasses import dataclass

ENV_VAR = "HRM_MLX_BLAS"

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
