import sys
from pathlib import Path

import hrm_mlx  # noqa: F401  (first: preloads the optimised BLAS before any test imports mlx.core)

sys.path.insert(0, str(Path(__file__).parent))  # test helpers such as hrm_fixtures
