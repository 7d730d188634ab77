"""hrm-mlx: recursive reasoning models (HRM, TRM, FLARE) for MLX."""

from hrm_mlx import runtime

runtime.preload_blas()  # must precede the first import of mlx.core anywhere in the package (and is all that
# importing hrm_mlx changes in the process; runtime.configure() does the rest, explicitly)

from hrm_mlx.errors import HrmMlxError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["HrmMlxError", "__version__", "load", "save"]


def __getattr__(name: str):
    # load/save live in hrm_mlx.io, which imports mlx; import it on first use so `import hrm_mlx` stays light.
    if name in ("load", "save"):
        from hrm_mlx import io

        return getattr(io, name)
    raise AttributeError(f"module 'hrm_mlx' has no attribute {name!r}")
