"""The official ARC augmentation: one dihedral transform and one permutation of colours 1..9 per task version,
named ``<task>_t<id>_<colour map>``, and its inverse (see hrm_mlx.tasks.arc)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks.arc.grids import CANVAS, NUM_COLOURS, SEQ_LEN, ArcPuzzle, Grid, crop, fill_canvas, locate, randint
from hrm_mlx.tasks.grids import DIHEDRAL_INVERSE, dihedral_transform


# ---------------------------------------------------------------------------------------------------------------
# Augmentation (official build_arc_dataset.py): one dihedral transform and one permutation of colours 1..9 applied
# to every grid of a task; inverted on predictions before voting (arc_eval.ipynb).

_NAME_PATTERN = re.compile(r"^(?P<orig>.+)_t(?P<t>[0-7])_(?P<colours>\d{10})$")


@dataclass(frozen=True)
class ArcAugmentation:
    """`dihedral` 0..7 (see dihedral_transform) and `colours`: colours[c] is the new colour of colour c
    (a permutation of 0..9 with colours[0] == 0)."""

    dihedral: int = 0
    colours: tuple[int, ...] = tuple(range(NUM_COLOURS))

    def __post_init__(self):
        colours = tuple(int(c) for c in self.colours)
        object.__setattr__(self, "colours", colours)
        if not 0 <= int(self.dihedral) <= 7:
            raise HrmMlxError(f"dihedral transform ids are 0-7, got {self.dihedral}")
        object.__setattr__(self, "dihedral", int(self.dihedral))
        if sorted(colours) != list(range(NUM_COLOURS)) or colours[0] != 0:
            raise HrmMlxError(f"a colour map is a permutation of 0-9 keeping 0 (black), got {colours}")

    @property
    def suffix(self) -> str:
        """'t<id>_<10 digits>', the part of an augmented task's name after the original id."""
        return f"t{self.dihedral}_{''.join(map(str, self.colours))}"

    @property
    def is_identity(self) -> bool:
        return self.dihedral == 0 and self.colours == tuple(range(NUM_COLOURS))

    def apply(self, grid) -> Grid:
        """Recolour, then transform (colours and geometry commute)."""
        mapping = np.asarray(self.colours, dtype=np.uint8)
        return dihedral_transform(mapping[np.asarray(grid)], self.dihedral)

    def invert(self, grid) -> Grid:
        """Undo apply: the inverse transform, then the inverse colour map."""
        inverse = np.argsort(self.colours).astype(np.uint8)
        return inverse[dihedral_transform(np.asarray(grid), DIHEDRAL_INVERSE[self.dihedral])]


IDENTITY = ArcAugmentation()


def random_augmentation(rng) -> ArcAugmentation:
    """The official draw: dihedral id uniform in 0..7, then a random permutation of colours 1..9. `rng` is a numpy
    Generator or a legacy RandomState (same call order as the official builder)."""
    dihedral = randint(rng, 8)
    return ArcAugmentation(dihedral, (0, *(int(c) for c in rng.permutation(np.arange(1, 10, dtype=np.uint8)))))


def augmented_name(name: str, augmentation: ArcAugmentation) -> str:
    return f"{name}_{augmentation.suffix}"


def split_name(name: str) -> tuple[str, ArcAugmentation]:
    """(original task id, augmentation) of a task name; a name without a `_t<id>_<colours>` tail is the original
    (identity augmentation)."""
    match = _NAME_PATTERN.match(name)
    if match is None:
        return name, IDENTITY
    colours = tuple(int(ch) for ch in match["colours"])
    try:
        return match["orig"], ArcAugmentation(int(match["t"]), colours)
    except HrmMlxError:
        return name, IDENTITY  # digits that are not a colour permutation: not an augmentation suffix


def augment_puzzle(puzzle: ArcPuzzle, augmentation: ArcAugmentation) -> ArcPuzzle:
    """The task with every grid transformed, named `<id>_t<id>_<colours>`."""

    def move(grid):
        return None if grid is None else augmentation.apply(grid)

    # Transformed valid grids stay valid: skip __post_init__'s checks (the data builder makes many versions).
    version = ArcPuzzle.__new__(ArcPuzzle)
    version.id = augmented_name(puzzle.id, augmentation)
    version.train = [(move(i), move(o)) for i, o in puzzle.train]
    version.test = [(move(i), move(o)) for i, o in puzzle.test]
    return version


def invert_prediction(grid, name: str) -> Grid:
    """Map a grid predicted for the task named `name` (maybe augmented) back to the original task's frame."""
    return split_name(name)[1].invert(grid)


def augment(
    inputs: np.ndarray, labels: np.ndarray | None, rng: np.random.Generator,
    augmentations: Sequence[ArcAugmentation] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, list[ArcAugmentation]]:
    """Augment a token batch [B, 900]: each row's grid is found (locate), cropped, transformed and re-encoded at the
    top-left, identically for inputs and labels (labels may be None). One random augmentation per row unless
    `augmentations` gives them; a model tells tasks apart by puzzle identifier, so give all examples of one
    task the same augmentation. Returns (inputs, labels, augmentations); see invert_augmentation."""
    inputs = np.asarray(inputs)
    if augmentations is None:
        augmentations = [random_augmentation(rng) for _ in range(len(inputs))]
    augmentations = list(augmentations)

    def moved(batch):
        return np.stack([_reencode(row, a.apply) for row, a in zip(batch, augmentations)]) if len(batch) else batch

    return moved(inputs), None if labels is None else moved(np.asarray(labels)), augmentations


def invert_augmentation(tokens: np.ndarray, augmentations: Sequence[ArcAugmentation]) -> np.ndarray:
    """Map token predictions [B, 900] on augmented tasks back to the original tasks (official crop at the
    top-left, inverse transform, re-encoded at the top-left)."""
    return np.stack([_reencode(row, a.invert, offset=(0, 0)) for row, a in zip(np.asarray(tokens), augmentations)])


def _reencode(row: np.ndarray, transform: Callable, offset=None) -> np.ndarray:
    grid = transform(crop(row, locate(row) if offset is None else offset))
    board = np.zeros((CANVAS, CANVAS), dtype=np.int32)
    if grid.size:
        fill_canvas(board, grid, (0, 0))
    return board.reshape(SEQ_LEN)
