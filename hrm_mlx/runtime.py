"""Process-wide set-up for MLX on this machine: one step on import, the rest explicit.

On import of ``hrm_mlx`` (Linux), before the first ``import mlx.core``: the **BLAS preload**. The ``mlx[cpu]``
wheel links a slow reference BLAS (~6 GFLOP/s); MLX resolves its ``cblas_*`` calls through the dynamic linker,
so loading an optimised BLAS into the global symbol scope first makes every matmul use it (~30x faster).
``HRM_MLX_BLAS`` chooses: ``auto`` (default: MKL from the ``cpu`` extra, else a system OpenBLAS), ``mkl``,
``openblas``, ``none`` (keep MLX's own BLAS, no warning), or a path to a shared library exporting cblas_*.
Nothing else happens on import.

``configure()`` does the rest, once, before the first evaluation (each ``hrm-mlx`` command calls it; a program
using the library may): the BLAS thread count and MLX's scheduling width for row groups on parallel CPU streams
(``hrm_mlx.speed``), and whether and how ``mx.compile`` builds kernels here:

- MLX's CPU JIT turns fused element-wise graphs into C++ that it builds with the ``g++`` found on PATH, with no
  ``-march``: scalar loops, ~1.5 s of compiler per kernel, cached by kernel name in ``$TMPDIR/mlx``. With the
  speed paths on (``HRM_MLX_SPEED``), a ``g++`` wrapper in hrm-mlx's cache goes first on PATH: native,
  vectorising flags that keep every result bitwise equal to MLX's own build (no FMA contraction, no fast-math),
  and a precompiled header of MLX's kernel preamble (4x faster builds); and TMPDIR points at the wrapper's
  folder, so the kernel cache holds only kernels built this way and outlives a reboot.
- ``compile=False`` turns ``mx.compile`` off on a CPU: solving a few puzzles then needs no compiler at all (a
  first answer in about a second instead of 10-40 s of kernel builds), and eager steps run as fast there.
"""

from __future__ import annotations

import ctypes
import dataclasses
import glob
import hashlib
import logging
import os
import platform
import shutil
import site
import sys
from dataclasses import dataclass

ENV_VAR = "HRM_MLX_BLAS"
log = logging.getLogger(__name__)  # the library logs; with no handler set up, Python shows warnings on stderr

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
_library: ctypes.CDLL | None = None  # the preloaded BLAS, whose thread count configure() sets


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
    global _library
    try:
        lib = ctypes.CDLL(path, mode=os.RTLD_GLOBAL)
    except OSError:
        return False
    if not hasattr(lib, "cblas_sgemm"):
        return False
    _library = lib
    return True


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
            log.warning("hrm-mlx: warning: MLX runs on its slow reference BLAS (%s); pip install 'hrm-mlx[cpu]' "
                        "(MKL) or apt-get install libopenblas0-pthread, or set %s=none to silence this",
                        _choice.note, ENV_VAR)
    return _choice


def blas() -> BlasChoice:
    """The BLAS chosen at import time."""
    return preload_blas()


# -- explicit set-up ------------------------------------------------------------------------------------------

# Flags for MLX's CPU JIT builds. -march=native gives wide vectors and hardware FMA; -ffp-contract=off keeps the
# compiler from fusing a*b+c into an FMA that rounds once (so results stay bitwise equal to MLX's own build);
# -fno-math-errno and -fno-trapping-math (no result changes: errno and FP traps only) with a generous inline limit
# let g++ inline MLX's exp into the loop and vectorise it.
JIT_FLAGS = ("-march=native", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-finline-limit=10000")
MLX_JIT_FLAGS = ("-std=c++17", "-O3", "-Wall", "-fPIC")  # what MLX passes itself (mlx/backend/cpu/jit_compiler)
SCHEDULING_WIDTH = 1000  # MLX_BFS_MAX_WIDTH: MLX orders a graph breadth-first up to this width (its default, 20,
# runs one row group after the other: see hrm_mlx.speed)
BLAS_THREAD_SETTERS = ("MKL_Set_Num_Threads", "openblas_set_num_threads", "bli_thread_set_num_threads")


@dataclass(frozen=True)
class Setup:
    """What configure() did."""

    blas_threads: int | None  # None: left to the BLAS
    compile: bool  # whether mx.compile builds kernels
    jit_compiler: str | None  # the g++ wrapper MLX builds kernels with, or None (MLX's plain g++, or none)


_setup: Setup | None = None


def set_blas_threads(count: int) -> bool:
    """Set the preloaded BLAS's thread count now; False when it has no known setter."""
    for name in BLAS_THREAD_SETTERS:
        setter = getattr(_library, name, None) if _library is not None else None
        if setter is not None:
            setter.argtypes = [ctypes.c_int]
            setter(count)
            return True
    return False


def native_jit() -> str | None:
    """Put hrm-mlx's ``g++`` wrapper (JIT_FLAGS and a precompiled preamble; see the module docstring) first on
    PATH for MLX's CPU JIT, writing it into hrm-mlx's cache once. Returns the wrapper, or None (not Linux, no
    g++, or a read-only cache: MLX then builds with its plain flags, only slower)."""
    compiler = shutil.which("g++")
    if platform.system() != "Linux" or compiler is None:
        return None
    import mlx.core as mx

    from hrm_mlx import atomic
    from hrm_mlx.io.hub import cache_dir

    root = cache_dir() / "jit"
    if os.path.realpath(compiler).startswith(os.path.realpath(root) + os.sep):
        return compiler  # inherited from a parent process that set it up
    include = os.path.join(os.path.dirname(mx.__file__), "include")
    key = hashlib.sha256("\n".join((mx.__version__, include, os.path.realpath(compiler), *JIT_FLAGS)).encode())
    folder = root / key.hexdigest()[:16]
    wrapper = folder / "g++"
    script = _wrapper_script(os.path.realpath(compiler), include, str(folder / "pch"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not wrapper.is_file() or wrapper.read_text() != script:
            atomic.write_file(wrapper, script, executable=True)
    except OSError:
        return None
    os.environ["PATH"] = str(folder) + os.pathsep + os.environ.get("PATH", "")
    # MLX keeps built kernels in $TMPDIR/mlx/<version>/cpu, by kernel name only: point it at this wrapper's own
    # folder, so that the kernels loaded are those built with these flags (not another program's plain builds of
    # the same name, which run several times slower) and survive a reboot.
    os.environ["TMPDIR"] = str(folder)
    return str(wrapper)


def _wrapper_script(compiler: str, include: str, pch: str) -> str:
    """The wrapper: on its first call it precompiles MLX's kernel preamble (once, ~5 s; g++ uses the .gch only
    when it was made with the same options, else reads the header as before), then runs g++ with JIT_FLAGS."""
    flags = " ".join(JIT_FLAGS)
    mlx_flags = " ".join(MLX_JIT_FLAGS)
    gch = f"{pch}/mlx/backend/cpu/compiled_preamble.h.gch"
    return (
        "#!/bin/sh\n"
        "# MLX's CPU JIT compiler for hrm-mlx (hrm_mlx.runtime.native_jit)\n"
        f'if [ ! -f "{gch}" ]; then\n'
        f'  mkdir -p "{pch}/mlx/backend/cpu" && tmp="{gch}.$$" &&\n'
        f'  "{compiler}" {flags} {mlx_flags} -I "{include}" -x c++-header '
        f'"{include}/mlx/backend/cpu/compiled_preamble.h" -o "$tmp" >/dev/null 2>&1 && mv -f "$tmp" "{gch}"\n'
        f'  rm -f "$tmp"\n'
        "fi\n"
        f'exec "{compiler}" {flags} -I "{pch}" "$@"\n'
    )


def configure(*, compile: bool = True) -> Setup:
    """Set this process up for computing with MLX (see the module docstring); each ``hrm-mlx`` command calls it
    first. The BLAS threads, MLX's scheduling width and the JIT wrapper are set once (before the first
    evaluation: MLX reads its scheduling width once); ``compile`` applies to what follows each call. With the
    speed paths on a CPU, the BLAS runs one thread per row-group stream, a compiling process builds kernels
    with the native JIT wrapper, and ``compile=False`` turns ``mx.compile`` off (no kernel builds at all)."""
    global _setup
    import mlx.core as mx

    from hrm_mlx import speed

    if not speed.on_cpu():
        _setup = Setup(None, True, None)
        return _setup
    if _setup is None:
        os.environ.setdefault("MLX_BFS_MAX_WIDTH", str(SCHEDULING_WIDTH))
        _setup = Setup(1 if set_blas_threads(1) else None, True, None)
    if compile:
        if not os.environ.get("MLX_DISABLE_COMPILE"):  # the user's own switch wins
            mx.enable_compile()
        if _setup.jit_compiler is None:
            _setup = dataclasses.replace(_setup, jit_compiler=native_jit())
    else:
        mx.disable_compile()
    _setup = dataclasses.replace(_setup, compile=compile)
    return _setup


def current() -> Setup:
    """What configure() set up (configuring with the defaults when nothing did yet)."""
    return _setup or configure()
