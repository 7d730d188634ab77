"""ARC grids and tasks: reading task files (a task JSON, a Kaggle challenges file and its solutions file), checking
answers, and the official token encoding on the 30x30 canvas with its crop (see hrm_mlx.tasks.arc)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks.formats import load_json_documents
from hrm_mlx.tasks.grids import place


CANVAS = 30  # the official ARCMaxGridSize: grids are 1x1 .. 30x30
VOCAB_SIZE = 12  # 0 pad, 1 EOS, 2..11 = colours 0..9
SEQ_LEN = CANVAS * CANVAS
PAD, EOS = 0, 1
COLOUR_OFFSET = 2  # token of colour c is c + 2
NUM_COLOURS = 10
IGNORE_LABEL = 0  # the official ignore_label_id: pad cells of the labels are not trained on

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


def one_json_document(text: str, what: str):
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
        document = one_json_document(text_or_document, "solutions file")
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


def grid_key(grid: np.ndarray) -> bytes:
    """Shape and cells of a grid: equal keys = equal grids."""
    grid = np.ascontiguousarray(grid, dtype=np.uint8)
    return bytes(grid.shape) + grid.tobytes()


def grid_equal(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool((a == b).all())


# ---------------------------------------------------------------------------------------------------------------
# Encoding


def fill_canvas(board: np.ndarray, grid: np.ndarray, offset: tuple[int, int]) -> None:
    """Write the official encoding of `grid` at `offset` into a zeroed [CANVAS, CANVAS] board (HrmMlxError when it
    does not fit): colours, EOS below and right."""
    place(grid, CANVAS, offset, shift=COLOUR_OFFSET, board=board)
    r, c = int(offset[0]), int(offset[1])
    h, w = grid.shape
    if r + h < CANVAS:
        board[r + h, c : c + w] = EOS
    if c + w < CANVAS:
        board[r : r + h, c + w] = EOS


def encode_grid(grid, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Tokens int32 [900] of one grid placed at `offset` (row, column) of the canvas, EOS below and right."""
    grid = as_grid(grid)
    board = np.zeros((CANVAS, CANVAS), dtype=np.int32)
    fill_canvas(board, grid, offset)
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
    return randint(rng, CANVAS - height + 1), randint(rng, CANVAS - width + 1)


def randint(rng, high: int) -> int:
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
