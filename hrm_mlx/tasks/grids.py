"""What the grid tasks share: the 8 symmetries of the square and placing a grid on a token canvas.

Pure numpy. The symmetries are numbered as in HRM's dataset/common.py ``dihedral_transform`` (the official maze and
ARC augmentations): 0 identity, 1-3 rotations by 90/180/270 degrees counter-clockwise (numpy's rot90), 4 flip
left-right, 5 flip up-down, 6 transpose, 7 anti-transpose.
"""

from __future__ import annotations

import math

import numpy as np

from hrm_mlx.errors import HrmMlxError

_DIHEDRAL = (
    lambda g: g,
    lambda g: np.rot90(g, 1),
    lambda g: np.rot90(g, 2),
    lambda g: np.rot90(g, 3),
    np.fliplr,
    np.flipud,
    lambda g: g.T,
    lambda g: np.fliplr(np.rot90(g, 1)),
)
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)  # DIHEDRAL_INVERSE[i] undoes transform i


def dihedral_transform(grid: np.ndarray, index: int) -> np.ndarray:
    """Symmetry ``index`` (0..7, see the module docstring) of a 2-D grid."""
    return np.ascontiguousarray(_DIHEDRAL[index](grid))


def square_side(length: int, minimum: int = 1) -> int | None:
    """n when ``length`` is n*n with n >= minimum, else None."""
    side = math.isqrt(length)
    return side if side >= minimum and side * side == length else None


def place(grid: np.ndarray, canvas: int, offset: tuple[int, int] = (0, 0), shift: int = 0,
          board: np.ndarray | None = None) -> np.ndarray:
    """A [canvas, canvas] int32 board (or ``board``, filled in place) holding ``grid + shift`` at ``offset`` (row,
    column); every other cell stays as it is (0 = pad on a new board)."""
    r, c = int(offset[0]), int(offset[1])
    height, width = grid.shape
    if r < 0 or c < 0 or r + height > canvas or c + width > canvas:
        raise HrmMlxError(f"a {height}x{width} grid at offset ({r}, {c}) does not fit the {canvas}x{canvas} canvas")
    if board is None:
        board = np.zeros((canvas, canvas), dtype=np.int32)
    board[r:r + height, c:c + width] = np.asarray(grid) + shift
    return board
