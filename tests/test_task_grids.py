"""What the grid tasks share (hrm_mlx.tasks.grids): the 8 symmetries of the square, placing grids on a canvas."""

import numpy as np
import pytest

from hrm_mlx.tasks import grids
from user_errors import raises_one_line


def test_dihedral_transforms_are_eight_distinct_invertible_symmetries():
    grid = np.arange(16).reshape(4, 4)
    images = [grids.dihedral_transform(grid, i) for i in range(8)]
    assert len({image.tobytes() for image in images}) == 8
    for i, image in enumerate(images):
        np.testing.assert_array_equal(grids.dihedral_transform(image, grids.DIHEDRAL_INVERSE[i]), grid)
    np.testing.assert_array_equal(images[1], np.rot90(grid))  # official numbering


def test_official_inverse_table():
    assert grids.DIHEDRAL_INVERSE == (0, 3, 2, 1, 4, 5, 6, 7)


def test_place_on_a_canvas_and_square_sides():
    board = grids.place(np.array([[1, 2], [3, 4]]), 4, offset=(1, 2), shift=2)
    np.testing.assert_array_equal(board, [[0, 0, 0, 0], [0, 0, 3, 4], [0, 0, 5, 6], [0, 0, 0, 0]])
    with raises_one_line(r"a 2x2 grid at offset \(3, 0\) does not fit the 4x4 canvas"):
        grids.place(np.ones((2, 2), int), 4, offset=(3, 0))
    assert [grids.square_side(n) for n in (1, 16, 15)] == [1, 4, None]
    assert grids.square_side(1, minimum=2) is None


@pytest.mark.parametrize("index", range(8))
def test_each_symmetry_keeps_the_cells(index):
    grid = np.arange(6).reshape(2, 3)
    assert sorted(grids.dihedral_transform(grid, index).ravel()) == list(range(6))
