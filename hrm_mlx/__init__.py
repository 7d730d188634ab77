"""hrm-mlx: recursive reasoning models (HRM, TRM, FLARE) for MLX."""

from hrm_mlx import runtime

runtime.preload_blas()  # must precede the first import of mlx.core anywhere in the package

from hrm_mlx.errors import HrmMlxError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["HrmMlxError", "__version__"]
