"""Sudoku: the 9x9 puzzle of the HRM/TRM Sudoku-Extreme benchmark, and mini Sudoku (4x4 with 2x2 boxes, 6x6 with
2x3 boxes) as a second task of the same rules, a quick first training run on a CPU.

What lives here: reading puzzles from the formats people use (81-char strings, 9x9 text grids, JSON, JSONL,
the sapientinc/sudoku-extreme CSV; the same for the small sides), the official token encoding, a checker, an exact
solver, a generator of unique-solution puzzles and the official augmentation, for any side of BOXES (the grid's
side decides its boxes). Pure numpy on purpose: no mlx import, so data preparation and tests run anywhere and fast.

Official encoding (HRM dataset/build_sudoku_dataset.py): token = digit + 1 with a blank as digit 0, so
0 = pad (never produced), 1 = blank, 2..10 = digits 1..9. Labels are the full solution (tokens 2..10), so
every cell is supervised, givens included. A side-n grid is n*n tokens in the same encoding.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hrm_mlx.animate import CHANGED, DIGIT, FILLED, GIVEN, GIVEN_DIGIT, Cell
from hrm_mlx.config import setting
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks import register
from hrm_mlx.tasks.base import GridDataConfig, Picture, Task, span
from hrm_mlx.tasks.formats import (DETECTION_LIMIT, csv_questions, detection_sample, is_csv_header, json_entries,
                                   mostly, numbered_lines)

NAME = "sudoku"
VOCAB_SIZE = 11  # 0 pad, 1 blank, 2..10 = digits 1..9
SEQ_LEN = 81
PAD_TOKEN = 0
BLANK_TOKEN = 1
BOXES = {4: (2, 2), 6: (2, 3), 9: (3, 3)}  # grid side -> (rows, columns) of its boxes
NINE = (9,)  # the sides of the 9x9 task (every reader takes the sides it accepts)

BLANK_CHARS = ".0_*-"  # '-' only inside a row: a line made of dashes alone is a separator line
_SEPARATOR_CHARS = frozenset("-+=|─│┼━┃╋")
_DELETED_IN_ROWS = str.maketrans("", "", "|│,")
_GRID_KEYS = ("grid", "puzzle", "question")
_SOLUTION_KEYS = ("solution", "answer")
_NAME_KEYS = ("id", "name", "source")

# ASCII byte -> cell value (0 blank, 1..9 digit); 255 marks a symbol that is not a cell.
_CELL_OF_BYTE = np.full(256, 255, dtype=np.uint8)
for _digit in range(1, 10):
    _CELL_OF_BYTE[ord(str(_digit))] = _digit
for _blank in BLANK_CHARS:
    _CELL_OF_BYTE[ord(_blank)] = 0


@dataclass(eq=False)
class SudokuPuzzle:
    """A puzzle: grid [n,n] int8 with 0 = blank (n = 9, or a side of BOXES); `solution` [n,n] int8 when the input
    carried the answer; `name` when the input named it (a CSV source, a JSON id)."""

    grid: np.ndarray
    solution: np.ndarray | None = None
    name: str | None = None

    def __post_init__(self):
        self.grid = _as_digit_grid(self.grid, "puzzle")
        if self.solution is not None:
            self.solution = _as_digit_grid(self.solution, "solution")


def _as_digit_grid(values, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "iu" or (array.size and (array.min() < 0 or array.max() > 9)):
        raise HrmMlxError(f"sudoku {what} cells must be whole numbers 0-9 (0 = blank)")
    return array.astype(np.int8)


# ---------------------------------------------------------------------------------------------------------------
# Parsing


def parse(text: str, sides: tuple[int, ...] = NINE, name: str = NAME) -> list[SudokuPuzzle]:
    """Every puzzle in `text`: 81-char lines, 9x9 text grids (optional '|', '+---+', '---' separator lines),
    JSON objects / lists / 9x9 int arrays, JSONL, or CSV with a header naming `question` (and optionally
    `answer`); grids of the other `sides` the same way. A known answer is kept as `puzzle.solution`. JSON
    entries may name their task, which must be `name`."""
    return _parse(text, complete_tail=True, sides=sides, name=name)


def _parse(text: str, complete_tail: bool, sides: tuple[int, ...], name: str) -> list[SudokuPuzzle]:
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    stripped = text.strip()
    if not stripped:
        raise HrmMlxError("empty input: no sudoku puzzle found")
    if stripped[0] in "{[":
        puzzles = _parse_json(text, sides, name)
    elif is_csv_header(stripped.split("\n", 1)[0]):
        puzzles = _parse_csv(text, sides)
    else:
        puzzles = _parse_text(text, complete_tail, sides)
    if not puzzles:
        raise HrmMlxError("no sudoku puzzle found in the input")
    return puzzles


def looks_like(text: str, sides: tuple[int, ...] = NINE, name: str = NAME) -> bool:
    """True when `text` parses as Sudoku of `sides`. Large line-oriented inputs are judged on their first
    megabyte."""
    try:
        return len(_parse(detection_sample(text), complete_tail=False, sides=sides, name=name)) > 0
    except HrmMlxError:
        return False


def _cells(content: str, where: str) -> np.ndarray:
    """Cell values of a string holding only cell symbols (separators and whitespace already removed)."""
    raw = content.encode("utf-8")
    values = _CELL_OF_BYTE[np.frombuffer(raw, dtype=np.uint8)]
    if len(raw) != len(content) or (values == 255).any():
        bad = next(ch for ch in content if not ch.isascii() or _CELL_OF_BYTE[ord(ch)] == 255)
        raise HrmMlxError(f"{where}: unknown sudoku symbol {bad!r} (use digits 1-9, blanks '.' '0' '_')")
    return values.astype(np.int8)


def _row_content(line: str) -> str:
    return "".join(line.split()).translate(_DELETED_IN_ROWS)


def _is_separator(line: str) -> bool:
    squeezed = "".join(line.split())
    return bool(squeezed) and set(squeezed) <= _SEPARATOR_CHARS


def _either(values) -> str:
    return " or ".join(map(str, values))


def _parse_text(text: str, complete_tail: bool = True, sides: tuple[int, ...] = NINE) -> list[SudokuPuzzle]:
    """A line holds either a whole puzzle (81 cells) or one grid row (9 cells); 9 rows make a puzzle (a side-n
    grid: n*n or n cells, n rows). Blank and separator lines are skipped, so blank lines may also split bands or
    puzzles."""
    puzzles: list[SudokuPuzzle] = []
    rows: list[np.ndarray] = []
    grid_start = 0
    for line_no, line in numbered_lines(text.splitlines()):
        content = _row_content(line)
        if not content or _is_separator(line):
            continue
        cells = _cells(content, f"line {line_no}")
        side = len(rows[0]) if rows else len(cells)
        if not rows and _square(len(cells), sides):
            puzzles.append(SudokuPuzzle(cells.reshape(_square(len(cells), sides), -1)))
            continue
        if len(cells) != side or side not in sides:
            inside = f" (inside the grid that starts at line {grid_start})" if rows else ""
            raise HrmMlxError(
                f"line {line_no}: found {len(cells)} cells{inside}; a line holds a grid row ({_either(sides)} "
                f"cells) or a whole puzzle ({_either(n * n for n in sides)})"
            )
        if not rows:
            grid_start = line_no
        rows.append(cells)
        if len(rows) == side:
            puzzles.append(SudokuPuzzle(np.stack(rows)))
            rows = []
    if rows and complete_tail:
        raise HrmMlxError(f"the grid starting at line {grid_start} has {len(rows)} rows; a sudoku has {len(rows[0])}")
    return puzzles


def _square(cells: int, sides: tuple[int, ...]) -> int | None:
    """The side among `sides` of a grid of `cells` cells."""
    return next((side for side in sides if side * side == cells), None)


def _parse_csv(text: str, sides: tuple[int, ...] = NINE) -> list[SudokuPuzzle]:
    """sapientinc/sudoku-extreme rows: source,question,answer,rating ('.' = blank); only `question` is required."""
    puzzles = []
    for where, question, answer, source in csv_questions(text.strip()):
        grid = _grid_from_string(question, where, sides)
        solution = _grid_from_string(answer, f"{where}, answer", sides) if answer else None
        puzzles.append(SudokuPuzzle(grid, solution=solution, name=source))
    return puzzles


def _grid_from_string(text: str, where: str, sides: tuple[int, ...] = NINE) -> np.ndarray:
    """One puzzle from a string: 81 cells on one line or a multi-line grid."""
    if "\n" in text.strip():
        puzzles = _parse_text(text, sides=sides)
        if len(puzzles) != 1:
            raise HrmMlxError(f"{where}: expected one sudoku grid, found {len(puzzles)}")
        return puzzles[0].grid
    cells = _cells(_row_content(text), where)
    side = _square(len(cells), sides)
    if side is None:
        raise HrmMlxError(f"{where}: a sudoku has {_either(n * n for n in sides)} cells, found {len(cells)}")
    return cells.reshape(side, side)


# JSON ----------------------------------------------------------------------------------------------------------


def _parse_json(text: str, sides: tuple[int, ...] = NINE, name: str = NAME) -> list[SudokuPuzzle]:
    return [_puzzle_from_json(entry, where, sides, name)
            for where, entry in json_entries(text, lambda value: _is_single_grid(value, sides))]


def _is_single_grid(value: list, sides: tuple[int, ...] = NINE) -> bool:
    """A bare 9x9 array, 9 row strings or 81 numbers (or the same of another side), rather than a list of
    puzzles."""
    if len(value) in sides and all(isinstance(row, list) for row in value):
        return True
    if len(value) in sides and all(isinstance(row, str) and len(_row_content(row)) == len(value) for row in value):
        return True
    return _square(len(value), sides) is not None and all(v is None or isinstance(v, int) for v in value)


def _puzzle_from_json(entry, where: str, sides: tuple[int, ...] = NINE, name: str = NAME) -> SudokuPuzzle:
    if not isinstance(entry, dict):
        return SudokuPuzzle(_grid_from_json_value(entry, where, sides))
    task = entry.get("task", name)
    if task != name:
        raise HrmMlxError(f"{where}: task is {task!r}, not {name!r}")
    grid_key = next((key for key in _GRID_KEYS if key in entry), None)
    if grid_key is None:
        raise HrmMlxError(f"{where}: no sudoku grid (expected a key among {', '.join(_GRID_KEYS)})")
    grid = _grid_from_json_value(entry[grid_key], where, sides)
    solution_key = next((key for key in _SOLUTION_KEYS if entry.get(key) is not None), None)
    solution = _grid_from_json_value(entry[solution_key], f"{where}, {solution_key}", sides) if solution_key else None
    label = next((entry[key] for key in _NAME_KEYS if isinstance(entry.get(key), str) and entry[key]), None)
    return SudokuPuzzle(grid, solution=solution, name=label)


def _grid_from_json_value(value, where: str, sides: tuple[int, ...] = NINE) -> np.ndarray:
    grids = f"{_either(sides)} lists of {_either(sides)} numbers"
    if isinstance(value, str):
        return _grid_from_string(value, where, sides)
    if not isinstance(value, list):
        raise HrmMlxError(f"{where}: a sudoku grid is a string or {grids}, got {type(value).__name__}")
    side = len(value)
    if side in sides and all(isinstance(row, str) for row in value):
        return _grid_from_string("\n".join(value), where, sides)
    if side in sides and all(isinstance(row, list) and len(row) == side for row in value):
        flat = [cell for row in value for cell in row]
    elif _square(side, sides) and not any(isinstance(cell, list) for cell in value):
        flat, side = value, _square(side, sides)
    else:
        raise HrmMlxError(f"{where}: a sudoku grid is {grids} (0 = blank)")
    for cell in flat:
        if cell is not None and (isinstance(cell, bool) or not isinstance(cell, int) or not 0 <= cell <= 9):
            raise HrmMlxError(f"{where}: sudoku cells are numbers 0-9 (0 = blank), got {cell!r}")
    return np.array([cell or 0 for cell in flat], dtype=np.int8).reshape(side, side)


# ---------------------------------------------------------------------------------------------------------------
# Rules, validation, checking

@functools.cache
def _units(side: int) -> list[tuple[str, np.ndarray]]:
    """(name, flat cell indices) of every row, column and box of a side-n grid."""
    box_rows, box_cols = BOXES[side]
    cells = np.arange(side * side).reshape(side, side)
    boxes = [cells[r:r + box_rows, c:c + box_cols].reshape(-1)
             for r in range(0, side, box_rows) for c in range(0, side, box_cols)]
    return ([(f"row {i + 1}", row) for i, row in enumerate(cells)]
            + [(f"column {i + 1}", column) for i, column in enumerate(cells.T)]
            + [(f"box {i + 1}", box) for i, box in enumerate(boxes)])


def _first_duplicate(grid: np.ndarray) -> str | None:
    """'row 3 has two 5s' for the first unit repeating a digit (blanks ignored), else None."""
    flat = grid.reshape(-1)
    for unit_name, cells in _units(grid.shape[0]):
        counts = np.bincount(flat[cells], minlength=10)
        counts[0] = 0
        if counts.max() > 1:
            digit = int(counts.argmax())
            return f"{unit_name} has {counts[digit]} {digit}s"
    return None


def _shape(grid: np.ndarray) -> str:
    return "x".join(map(str, np.shape(grid)))


def validate(puzzle: SudokuPuzzle, sides: tuple[int, ...] = NINE) -> None:
    """Raise HrmMlxError when the puzzle cannot be used: not a grid of `sides`, digits beyond its side or givens
    that already conflict (and, when an answer came with it, an answer that does not solve it)."""
    side = puzzle.grid.shape[0]
    if puzzle.grid.shape != (side, side) or side not in sides:
        raise HrmMlxError(f"a sudoku grid is {_either(f'{n}x{n}' for n in sides)}, got {_shape(puzzle.grid)}")
    if puzzle.grid.max() > side:
        raise HrmMlxError(f"a {side}x{side} sudoku holds the digits 1-{side}, not {puzzle.grid.max()}")
    conflict = _first_duplicate(puzzle.grid)
    if conflict:
        raise HrmMlxError(f"the givens conflict: {conflict}")
    if puzzle.solution is not None:
        ok, reason = check(puzzle, puzzle.solution)
        if not ok:
            raise HrmMlxError(f"the answer given with the puzzle is wrong: {reason}")


def check(puzzle: SudokuPuzzle, answer: np.ndarray) -> tuple[bool, str]:
    """(True, "solved") when `answer` keeps every given and fills the grid so that every row, column and box
    holds 1..9 once (1..n on a side-n grid); otherwise (False, the first problem found)."""
    answer = np.asarray(answer)
    side = puzzle.grid.shape[0]
    if answer.shape != puzzle.grid.shape:
        return False, f"the answer is {_shape(answer)}, not {_shape(puzzle.grid)}"
    if answer.min() < 0 or answer.max() > side:
        return False, f"answer cells must be digits 1-{side}"
    for r, c in np.argwhere(answer == 0):
        return False, f"row {r + 1}, column {c + 1} is blank"
    for r, c in np.argwhere((puzzle.grid != 0) & (puzzle.grid != answer)):
        return False, f"the given {puzzle.grid[r, c]} at row {r + 1}, column {c + 1} became {answer[r, c]}"
    duplicate = _first_duplicate(answer.astype(np.int64))
    if duplicate:
        return False, duplicate
    return True, "solved"


# ---------------------------------------------------------------------------------------------------------------
# Encoding


def encode(puzzle: SudokuPuzzle) -> np.ndarray:
    """Official input tokens int32 [81] (n*n): blank -> 1, digit d -> d + 1."""
    return puzzle.grid.reshape(-1).astype(np.int32) + 1


def encode_answer(answer: np.ndarray) -> np.ndarray:
    """Official label tokens int32 [81] (n*n) of a solved grid (digits 1..9 -> tokens 2..10)."""
    return np.asarray(answer).reshape(-1).astype(np.int32) + 1


def free_cells(tokens: np.ndarray) -> np.ndarray:
    """Where a model fills in the answer: the blank cells; givens stay."""
    return np.asarray(tokens) == BLANK_TOKEN


def decode(tokens: np.ndarray, puzzle: SudokuPuzzle | None = None) -> np.ndarray:
    """Answer grid [9,9] int8 of digits from tokens [81] (side n from n*n tokens); pad, blank or out-of-range
    tokens become 0 (blank), which the checker then reports. `puzzle` is accepted for symmetry with the other
    tasks."""
    tokens = np.asarray(tokens).reshape(-1)
    side = math.isqrt(tokens.size)
    digits = np.where((tokens >= 2) & (tokens <= side + 1), tokens - 1, 0)
    return digits.astype(np.int8).reshape(side, side)


def to_text(item: SudokuPuzzle | np.ndarray, compact: bool = False) -> str:
    """Plain text ('.' = blank): 9 lines of 9 characters, or one 81-character line when `compact` (n lines of n
    on a side-n grid)."""
    grid = item.grid if isinstance(item, SudokuPuzzle) else np.asarray(item)
    side = math.isqrt(grid.size)
    rows = ["".join(str(int(v)) if 1 <= v <= side else "." for v in row) for row in grid.reshape(side, side)]
    return "".join(rows) if compact else "\n".join(rows)


# ---------------------------------------------------------------------------------------------------------------
# Exact solver: depth-first search over bitmasks, always branching on the cell with the fewest candidates.
# Digit d is bit (d - 1) of an n-bit mask; rows/cols/boxes hold the digits already used in each unit. The search is
# an explicit-stack loop over flat arrays so that numba (the `train` extra) compiles it: digging training puzzles
# down to 17-24 givens takes hundreds of thousands of searches. Without numba the same function runs as Python.

def _search(grid, limit, digit_order, first_solution, side, box_rows, box_cols, budget):
    """Count the solutions of `grid` (side*side cells, 0 = blank; boxes of box_rows x box_cols), stopping at
    `limit`; the first one found is written to `first_solution`. `digit_order[cell][k]` is the k-th digit (minus
    one) to try in a cell. After `budget` digits placed without settling the count it gives up and returns -1."""
    size = side * side
    stacks = side // box_cols  # boxes per row of boxes
    rows, cols, boxes = [0] * side, [0] * side, [0] * side
    empties = [0] * size
    n = 0
    for cell in range(size):
        digit = grid[cell]
        if digit == 0:
            empties[n] = cell
            n += 1
            continue
        bit = 1 << (digit - 1)
        r, c = cell // side, cell % side
        b = (r // box_rows) * stacks + c // box_cols
        if (rows[r] | cols[c] | boxes[b]) & bit:
            return 0
        rows[r] |= bit
        cols[c] |= bit
        boxes[b] |= bit
    candidates = [0] * size  # per depth: the free digits of the cell chosen there
    tried = [0] * size  # per depth: how far along that cell's digit order the search is
    placed = [0] * size  # per depth: the digit placed there (0 = none)
    every = (1 << side) - 1
    found, depth, descending = 0, 0, True
    while depth >= 0:
        if descending:
            if depth == n:  # every cell filled: a solution
                found += 1
                if found == 1:
                    for cell in range(size):
                        first_solution[cell] = grid[cell]
                    for i in range(n):
                        first_solution[empties[i]] = placed[i]
                if found >= limit:
                    return found
                depth -= 1
                descending = False
                continue
            best, best_count, best_free = depth, 10, 0
            for i in range(depth, n):
                cell = empties[i]
                r, c = cell // side, cell % side
                free = every & ~(rows[r] | cols[c] | boxes[(r // box_rows) * stacks + c // box_cols])
                count, rest = 0, free
                while rest:
                    rest &= rest - 1
                    count += 1
                if count < best_count:
                    best, best_count, best_free = i, count, free
                    if count <= 1:
                        break
            empties[depth], empties[best] = empties[best], empties[depth]
            candidates[depth], tried[depth], placed[depth] = best_free, 0, 0
            descending = False
        cell = empties[depth]
        r, c = cell // side, cell % side
        b = (r // box_rows) * stacks + c // box_cols
        if placed[depth]:  # take back the digit tried last at this depth
            bit = 1 << (placed[depth] - 1)
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            placed[depth] = 0
        digit = -1
        while tried[depth] < side and digit < 0:
            option = digit_order[cell][tried[depth]]
            tried[depth] += 1
            if candidates[depth] >> option & 1:
                digit = option
        if digit < 0:  # no candidate left here: back up
            depth -= 1
            continue
        budget -= 1
        if budget < 0:
            return -1
        bit = 1 << digit
        rows[r] |= bit
        cols[c] |= bit
        boxes[b] |= bit
        placed[depth] = digit + 1
        depth += 1
        descending = True
    return found


_compiled_search = None  # numba's build of _search, made on first use (None: not yet; False: numba is missing)


def _fast_search():
    """_search compiled by numba, or None without numba. Importing numba takes ~0.25 s and a first compile 1-3 s
    (cached on disk afterwards), so this happens only when a search runs (generating data), never on import."""
    global _compiled_search
    if _compiled_search is None:
        try:
            from numba import njit
        except ImportError:  # numba is optional: the search then runs as plain Python on lists, correct but slower
            _compiled_search = False
        else:
            _compiled_search = njit(cache=True, nogil=True)(_search)
    return _compiled_search or None


UNBOUNDED = 1 << 62  # a search budget no search reaches


def _run_search(grid: np.ndarray, limit: int, digit_order: np.ndarray | None = None, budget: int = UNBOUNDED,
                compiled: bool = True) -> tuple[int, np.ndarray]:
    """(solutions found up to `limit`, the first) of a grid (its side from its size); digits tried in
    `digit_order` [cells, side] (default: 1..n in every cell). ``compiled=False`` runs the search as Python (no
    numba import: a short bounded check); -1 when it placed ``budget`` digits without settling the count."""
    cells = np.ascontiguousarray(grid, dtype=np.int64).reshape(-1)
    side = math.isqrt(cells.size)
    if digit_order is None:
        digit_order = np.tile(np.arange(side, dtype=np.int64), (cells.size, 1))
    first = np.zeros(cells.size, dtype=np.int64)
    search = _fast_search() if compiled else None
    if search is None:  # Python indexes lists several times faster than arrays
        search = _search
        first, cells, digit_order = first.tolist(), cells.tolist(), digit_order.tolist()
    found = search(cells, limit, digit_order, first, side, *BOXES[side], budget)
    return int(found), np.asarray(first, dtype=np.int8).reshape(side, side)


def _grid_of(item: SudokuPuzzle | np.ndarray) -> np.ndarray:
    if isinstance(item, SudokuPuzzle):
        return item.grid
    grid = _as_digit_grid(item, "grid")
    side = math.isqrt(grid.size)
    return grid.reshape(side, side)


def count_solutions(grid: SudokuPuzzle | np.ndarray, limit: int = 2) -> int:
    """Number of solutions, counting stops at `limit` (limit=2 answers "is it unique?"). 0 if the givens
    conflict or the puzzle has no solution."""
    return _run_search(_grid_of(grid), limit)[0]


# Digits the exact solver may place when checking a puzzle before a model answers it: a few milliseconds of plain
# Python (solving never imports numba) settle puzzles without a solution or with several, the usual mistakes of a
# hand-made puzzle; a hard puzzle that needs a longer search is left unjudged.
CHECK_BUDGET = 2_000


def exact_check(puzzle: SudokuPuzzle) -> str | None:
    """What the exact solver says of a valid puzzle: raise HrmMlxError when it has no solution (no answer can pass
    the checker), a note when it has several (any valid completion counts), else None. It never answers for the
    model."""
    found = _run_search(puzzle.grid, 2, budget=CHECK_BUDGET, compiled=False)[0]  # -1: not settled in the budget
    if found == 0:
        raise HrmMlxError("this puzzle has no solution (its givens do not clash directly, but no grid completes "
                          "them)")
    return "this puzzle has 2+ solutions; any valid completion counts" if found >= 2 else None


def solve(grid: SudokuPuzzle | np.ndarray) -> np.ndarray | None:
    """A solution [n,n] int8, or None when there is none."""
    found, solution = _run_search(_grid_of(grid), 1)
    return solution if found else None


# ---------------------------------------------------------------------------------------------------------------
# Generator

MIN_GIVENS = 17  # no 16-clue sudoku has a unique solution; digging below ~22 takes many attempts
FEWEST_GIVENS = {4: 4, 6: 8, 9: MIN_GIVENS}  # per side: the fewest givens of a unique puzzle


def random_full_grid(rng: np.random.Generator, side: int = 9) -> np.ndarray:
    """A random complete sudoku [9,9] int8 ([side,side]): the first solution of the empty grid when candidates are
    tried in random order (varied, though not exactly uniform over all grids)."""
    digit_order = np.argsort(rng.random((side * side, side)), axis=1)
    return _run_search(np.zeros((side, side), dtype=np.int8), 1, digit_order)[1]


def _dig_holes(solution: np.ndarray, target_givens: int, rng: np.random.Generator) -> np.ndarray:
    """Blank cells of `solution` in a random order while the puzzle keeps a unique solution, down to
    `target_givens`; a puzzle left with more givens is minimal (no given can be blanked).

    Speed trick: uniqueness is monotone (blanking more cells never removes solutions), so instead of
    testing cells one by one we binary-search the longest run of the order that can be blanked together;
    this gives exactly the greedy result with O(log n) solver calls per cell that has to stay."""
    flat = solution.reshape(-1).copy()
    order = rng.permutation(flat.size)
    still_needed = flat.size - target_givens
    position = 0
    while still_needed > 0 and position < flat.size:
        run = order[position : position + still_needed]
        blankable = _longest_blankable_prefix(flat, run)
        flat[run[:blankable]] = 0
        still_needed -= blankable
        position += blankable + (1 if still_needed else 0)  # the next cell must stay a given
    return flat.reshape(solution.shape)


def _longest_blankable_prefix(flat: np.ndarray, run: np.ndarray) -> int:
    def unique_without(count: int) -> bool:
        trial = flat.copy()
        trial[run[:count]] = 0
        return count_solutions(trial, limit=2) == 1

    if unique_without(len(run)):
        return len(run)
    good, bad = 0, len(run)  # invariant: blanking `good` cells keeps uniqueness, `bad` cells breaks it
    while bad - good > 1:
        middle = (good + bad) // 2
        if unique_without(middle):
            good = middle
        else:
            bad = middle
    return good


def _givens_range(givens: int | tuple[int, int], side: int = 9) -> tuple[int, int]:
    return span(givens, "givens", FEWEST_GIVENS[side], side * side)


def _is_unique(flat: np.ndarray) -> bool:
    return _run_search(flat, 2)[0] == 1


def _descend(puzzle: np.ndarray, solution: np.ndarray, target_givens: int, rng: np.random.Generator,
             moves: int) -> np.ndarray:
    """Lower the givens of a minimal puzzle (no single given can be blanked) below where digging stops: swap two
    givens for one other cell of the solution while the solution stays unique ("-2 +1" moves), then blank every
    given that has become redundant, until `target_givens` or `moves` tries."""
    flat, answer = puzzle.reshape(-1).copy(), solution.reshape(-1)
    for _ in range(moves):
        if (flat != 0).sum() <= target_givens:
            break
        trial = flat.copy()
        trial[rng.choice(np.flatnonzero(flat), 2, replace=False)] = 0
        added = rng.choice(np.flatnonzero(flat == 0))
        trial[added] = answer[added]
        if not _is_unique(trial):
            continue
        for cell in rng.permutation(np.flatnonzero(trial)):
            if (trial != 0).sum() <= target_givens:
                break
            kept, trial[cell] = trial[cell], 0
            if not _is_unique(trial):
                trial[cell] = kept
        flat = trial
    return flat.reshape(puzzle.shape)


# Random digging rarely stops below 22 givens. For targets below that, a dig that stops at most DESCENT_REACH
# givens above goes on with "-2 +1" moves (see _descend): ~2 s per 21-given puzzle, ~30 s per 20-given one with
# numba; 17-19 stay out of reach. Above, a fresh grid is cheaper than the moves.
DESCENT_BELOW = 22
DESCENT_REACH = 4
DESCENT_MOVES = 3000


def make_puzzle(target_givens: int, rng: np.random.Generator, max_attempts: int = 500,
                side: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """(puzzle, solution) grids of `side` with exactly `target_givens` givens and a unique solution."""
    for _ in range(max_attempts):
        solution = random_full_grid(rng, side)
        puzzle = _dig_holes(solution, target_givens, rng)
        above = int((puzzle != 0).sum()) - target_givens
        if target_givens < DESCENT_BELOW and 0 < above <= DESCENT_REACH:
            puzzle = _descend(puzzle, solution, target_givens, rng, DESCENT_MOVES)
        if (puzzle != 0).sum() == target_givens:
            return puzzle, solution
    raise HrmMlxError(
        f"no unique sudoku with {target_givens} givens after {max_attempts} random grids; ask for more givens"
    )


def generate(
    n: int, rng: np.random.Generator, givens: int | tuple[int, int] = (30, 45), max_attempts: int = 500,
    side: int = 9,
) -> list[tuple[SudokuPuzzle, np.ndarray]]:
    """n random unique-solution puzzles of `side` as (puzzle, solution) pairs (the puzzle also carries the solution).

    `givens` is an exact count or an inclusive (low, high) range drawn per puzzle. With numba (the `train`
    extra), 30 givens take ~0.4 ms per puzzle, 24 ~3 ms, 22 ~40 ms and 20-21 about a second; without it, 10-30x
    longer. `max_attempts` grids without success raise HrmMlxError."""
    low, high = _givens_range(givens, side)
    pairs = []
    for _ in range(n):
        grid, solution = make_puzzle(int(rng.integers(low, high + 1)), rng, max_attempts, side)
        pairs.append((SudokuPuzzle(grid, solution=solution), solution))
    return pairs


def generate_batch(
    n: int, rng: np.random.Generator, givens: int | tuple[int, int] = (30, 45), side: int = 9
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) int32 [n, 81] ([n, side*side]) in the official encoding, ready for training."""
    pairs = generate(n, rng, givens, side=side)
    empty = np.zeros((0, side * side), np.int32)
    inputs = np.stack([encode(puzzle) for puzzle, _ in pairs]) if pairs else empty
    labels = np.stack([encode_answer(sol) for _, sol in pairs]) if pairs else empty
    return inputs, labels


# ---------------------------------------------------------------------------------------------------------------
# Augmentation (official build_sudoku_dataset.py shuffle_sudoku): relabel digits (blank fixed), transpose with
# p = 0.5, shuffle the bands and the rows inside each band, shuffle the stacks and the columns inside each stack.
# All of these map sudokus to sudokus, so one transform applied to puzzle and solution keeps them consistent. (A
# grid with boxes that are not square, 6x6, is never transposed: its boxes would not stay boxes.)


@dataclass(frozen=True, eq=False)
class SudokuTransform:
    cell_order: np.ndarray  # [81]: cell i of the transformed grid is cell cell_order[i] of the original
    token_map: np.ndarray  # [side + 2]: original token -> transformed token (pad and blank fixed)


def random_transform(rng: np.random.Generator, side: int = 9) -> SudokuTransform:
    box_rows, box_cols = BOXES[side]
    digit_perm = rng.permutation(side)  # digit d -> digit_perm[d - 1] + 1
    transpose = rng.random() < 0.5 and box_rows == box_cols
    row_order = np.concatenate([box_rows * band + rng.permutation(box_rows)
                                for band in rng.permutation(side // box_rows)])
    col_order = np.concatenate([box_cols * stack + rng.permutation(box_cols)
                                for stack in rng.permutation(side // box_cols)])
    rows, cols = np.meshgrid(row_order, col_order, indexing="ij")
    # As the official code: transpose first, then pick rows/cols, so new[r, c] = old.T[row_order[r], col_order[c]].
    cell_order = (cols * side + rows) if transpose else (rows * side + cols)
    token_map = np.concatenate([[PAD_TOKEN, BLANK_TOKEN], digit_perm + 2])
    return SudokuTransform(cell_order.reshape(-1), token_map)


def apply_transform(tokens: np.ndarray, transform: SudokuTransform) -> np.ndarray:
    """Transform token sequences [..., 81] ([..., n*n])."""
    return transform.token_map[np.asarray(tokens)[..., transform.cell_order]].astype(np.int32)


def invert_transform(tokens: np.ndarray, transform: SudokuTransform) -> np.ndarray:
    """Undo apply_transform (e.g. to map a prediction on an augmented puzzle back to the original)."""
    tokens = np.asarray(tokens)
    original = np.empty_like(tokens)
    original[..., transform.cell_order] = np.argsort(transform.token_map)[tokens]
    return original.astype(np.int32)


def augment(
    inputs: np.ndarray, labels: np.ndarray | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None, list[SudokuTransform]]:
    """One random transform per example of a token batch [B, 81] ([B, n*n]), applied identically to inputs and
    labels (labels may be None at inference). Returns (inputs, labels, transforms); see invert_augmentation."""
    side = math.isqrt(np.shape(inputs)[1])
    transforms = [random_transform(rng, side) for _ in range(len(inputs))]
    new_inputs = np.stack([apply_transform(x, t) for x, t in zip(inputs, transforms)]) if transforms else inputs
    new_labels = None
    if labels is not None:
        new_labels = np.stack([apply_transform(y, t) for y, t in zip(labels, transforms)]) if transforms else labels
    return new_inputs, new_labels, transforms


def invert_augmentation(tokens: np.ndarray, transforms: list[SudokuTransform]) -> np.ndarray:
    """Map a batch of token predictions [B, 81] on augmented puzzles back to the original puzzles."""
    return np.stack([invert_transform(x, t) for x, t in zip(tokens, transforms)])


# ---------------------------------------------------------------------------------------------------------------
# The task

DIFFICULTY = {"easy": [40, 45], "medium": [32, 39], "hard": [26, 31], "expert": [22, 25]}  # givens per level


@dataclass
class SudokuData(GridDataConfig):
    givens: int | list[int] | str = setting([30, 45], "givens of generated puzzles: a count, [low, high] drawn per "
                                            f"puzzle, or a difficulty ({', '.join(DIFFICULTY)})")
    num_aug: int = setting(0, "official shuffle_sudoku augmentations per training puzzle")
    repo: str = setting("sapientinc/sudoku-extreme", "Hugging Face dataset of the 'hub' source")
    min_difficulty: int | None = setting(None, "official rating filter of the CSV source (keep ratings >= this)")

    def validate(self) -> None:
        if isinstance(self.givens, str) and self.givens not in DIFFICULTY:
            raise HrmMlxError(f"unknown sudoku difficulty {self.givens!r}; known: {', '.join(DIFFICULTY)}")
        if not isinstance(self.givens, str):
            _givens_range(self.givens)

    @property
    def givens_range(self) -> int | tuple[int, int]:
        givens = DIFFICULTY[self.givens] if isinstance(self.givens, str) else self.givens
        return tuple(givens) if isinstance(givens, list) else givens

    @property
    def side(self) -> int:
        return 9


class SudokuTask(Task):
    """The 9x9 task (and, through ``sides``, its smaller siblings): puzzles, the official encoding and data."""

    name = NAME
    sides = NINE  # the grid sides the task reads
    extensions = (".txt", ".csv", ".json", ".jsonl", ".sdk", ".sudoku")
    vocab_size = VOCAB_SIZE
    official_seq_len = SEQ_LEN
    default_recipe = "sudoku-cpu"
    DataConfig = SudokuData
    free_token = BLANK_TOKEN
    csv_symbols = {".": BLANK_TOKEN, **{str(digit): digit + 1 for digit in range(10)}}  # '0' is a blank too
    title = "Sudoku"
    example = "examples/sudoku.txt"
    default_versions = 16  # the puzzle and 15 symmetric copies vote (22-24 givens: 9% -> 84% solved, see the card)
    proven_by_check = True  # a completed grid that breaks no rule and keeps the givens is an answer

    to_text = staticmethod(to_text)
    decode = staticmethod(decode)
    check = staticmethod(check)

    def parse(self, text: str) -> list[SudokuPuzzle]:
        return parse(text, self.sides, self.name)

    def looks_like(self, text: str) -> bool:
        return looks_like(text, self.sides, self.name)

    def validate(self, puzzle: SudokuPuzzle, **options) -> None:
        validate(puzzle, **(options or {"sides": self.sides}))

    def encode(self, puzzle: SudokuPuzzle, **options) -> np.ndarray:
        return encode(puzzle)

    def symmetric_copies(self, puzzle: SudokuPuzzle, count: int) -> list[tuple[SudokuPuzzle, Callable]]:
        """Copies under the official augmentation (digit relabelling, transposition, row and column shuffles
        within bands and stacks), drawn from a generator seeded by the puzzle's givens."""
        rng = np.random.default_rng(int.from_bytes(puzzle.grid.tobytes(), "little") % 2**63)
        copies = []
        for _ in range(count):
            transform = random_transform(rng, puzzle.grid.shape[0])
            copy = SudokuPuzzle(decode(apply_transform(encode(puzzle), transform)))
            copies.append((copy, lambda grid, t=transform: decode(invert_transform(encode_answer(grid), t))))
        return copies

    def exact_check(self, puzzle: SudokuPuzzle) -> str | None:
        return exact_check(puzzle)

    def resembles(self, text: str) -> bool:
        return any(ch.isdigit() for ch in text[:DETECTION_LIMIT]) and mostly(text, "0123456789" + BLANK_CHARS + "|+=")

    def puzzle_from_tokens(self, tokens: np.ndarray) -> SudokuPuzzle:
        return SudokuPuzzle(decode(tokens))

    def pictures(self, puzzle: SudokuPuzzle, answer: np.ndarray, attempts=None) -> list[Picture]:
        """The puzzle beside the answer: the givens stand apart from the model's digits also where there are no
        colours (a pipe, a log file, NO_COLOR)."""
        left = self.grid_picture(puzzle, puzzle.grid, blank="dim").rows
        right = self.grid_picture(puzzle, answer).rows
        widths = [sum(len(text) for text, _ in row) for row in left]  # box borders are a cell shorter
        width = max(widths) + 3
        rows = [a + [(" " * (width - w), "")] + b for a, w, b in zip(left, widths, right)]
        return [Picture(rows, caption="puzzle".ljust(width) + "answer")]

    def grid_picture(self, puzzle: SudokuPuzzle, grid: np.ndarray, changed=frozenset(), *,
                     blank: str = "red") -> Picture:
        """Givens bold, digits the model filled cyan, an empty cell in the ``blank`` style (red: a digit the
        answer lacks), changed cells reversed; boxes dim."""
        side = puzzle.grid.shape[0]
        box_rows, box_cols = BOXES[side]
        stacks = side // box_cols
        border = "+".join("-" * (2 * box_cols + (0 < i < stacks - 1)) for i in range(stacks))  # ------+-------+------
        rows = []
        for r in range(side):
            if r and r % box_rows == 0:
                rows.append([(border, "dim")])
            row = []
            for c in range(side):
                if c and c % box_cols == 0:
                    row.append(("| ", "dim"))
                given = int(puzzle.grid[r, c])
                value = given or int(grid[r, c])
                style = "bold" if given else ("cyan" if value else blank)
                row += [(str(value) if value else ".", style + (" reverse" if (r, c) in changed else "")), (" ", "")]
            rows.append(row)
        return Picture(rows)

    def frame(self, puzzle: SudokuPuzzle, grid: np.ndarray, changed=frozenset()) -> tuple[list, tuple[int, int]]:
        """Givens on grey, the model's digits in blue, cells changed at this step on yellow; boxes outlined."""
        side = puzzle.grid.shape[0]
        cells = [[Cell(GIVEN, str(int(puzzle.grid[r, c])), GIVEN_DIGIT) if puzzle.grid[r, c] else
                  Cell(CHANGED if (r, c) in changed else FILLED, str(int(v)) if 1 <= v <= side else "", DIGIT)
                  for c, v in enumerate(row)] for r, row in enumerate(np.asarray(grid))]
        return cells, BOXES[side]

    def generate_batch(self, n: int, rng: np.random.Generator, data: SudokuData) -> tuple[np.ndarray, np.ndarray]:
        return generate_batch(n, rng, data.givens_range, data.side)

    def csv_cells(self, width: int, where: str) -> int:
        return SEQ_LEN

    def versions(self, inputs: np.ndarray, labels: np.ndarray, data: SudokuData,
                 rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        copies = [(inputs, labels)]
        for _ in range(data.num_aug):
            transform = random_transform(rng, data.side)
            copies.append((apply_transform(inputs, transform), apply_transform(labels, transform)))
        return copies


TASK = register(SudokuTask())


# ---------------------------------------------------------------------------------------------------------------
# Mini Sudoku: the same rules on 4x4 grids (2x2 boxes) and 6x6 grids (2x3 boxes), generated only. A model learns
# one side (the data setting `size`, recorded in its task block); on 4x4 it trains to perfect answers on a CPU in
# minutes (recipe mini-sudoku).

MINI_GIVENS = {4: [4, 8], 6: [10, 18]}  # default givens per side


@dataclass
class MiniSudokuData(GridDataConfig):
    size: int = setting(4, "side of the grids: 4 (2x2 boxes) or 6 (2x3 boxes)")
    givens: int | list[int] | None = setting(None, "givens of generated puzzles: a count or [low, high] drawn per "
                                             f"puzzle; null: {MINI_GIVENS[4]} on 4x4, {MINI_GIVENS[6]} on 6x6")
    num_aug: int = setting(1, "shuffle augmentations per training puzzle (digits, bands, rows, stacks, columns)")

    def validate(self) -> None:
        if self.size not in MINI_GIVENS:
            raise HrmMlxError(f"size must be one of {_either(MINI_GIVENS)}, not {self.size!r}")
        _givens_range(self.givens_range, self.size)

    @property
    def side(self) -> int:
        return self.size

    @property
    def givens_range(self) -> int | tuple[int, int]:
        givens = MINI_GIVENS[self.size] if self.givens is None else self.givens
        return tuple(givens) if isinstance(givens, list) else givens


class MiniSudokuTask(SudokuTask):
    name = "mini-sudoku"
    sides = tuple(MINI_GIVENS)
    extensions = (".txt", ".csv", ".json", ".jsonl")
    vocab_size = 2 + max(MINI_GIVENS)  # pad, blank, digits 1..6
    official_seq_len = None
    default_recipe = "mini-sudoku"
    DataConfig = MiniSudokuData
    sources = ("generate",)
    csv_symbols = {".": BLANK_TOKEN, **{str(digit): digit + 1 for digit in range(max(MINI_GIVENS) + 1)}}
    title = "Mini Sudoku"
    example = "PUZZLE"

    def model_info(self, data: MiniSudokuData) -> dict:
        return {**super().model_info(data), "size": data.size}

    def options(self, info: dict) -> dict:
        return {"sides": (int(info.get("size", max(self.sides))),)}

    def seq_len(self, info: dict) -> int | None:
        return int(info.get("size", max(self.sides))) ** 2

    def check_info(self, info: dict) -> None:
        if info.get("size", max(self.sides)) not in self.sides:
            raise HrmMlxError(f"task size must be one of {_either(self.sides)}, not {info.get('size')!r}")

    def data_for_model(self, info: dict) -> dict:
        return {**super().data_for_model(info), "size": int(info.get("size", max(self.sides)))}

    def csv_cells(self, width: int, where: str) -> int:
        if _square(width, self.sides) is None:
            raise HrmMlxError(f"{where}: a mini sudoku has {_either(n * n for n in self.sides)} cells, not {width}")
        return width


MINI = register(MiniSudokuTask())
