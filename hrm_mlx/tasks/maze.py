"""Maze: find a shortest path from S to G, the HRM/TRM Maze-Hard task (sapientinc/maze-30x30-hard-1k).

What lives here: reading mazes (text grids, flat n*n strings, JSON, JSONL, the dataset CSV), the official token
encoding on a square canvas, a checker, a BFS solver, a generator and the dihedral augmentation. Pure numpy on
purpose: no mlx import.

Cell codes equal the official tokens: 1 '#' wall, 2 ' ' open, 3 'S' start, 4 'G' goal, 5 'o' path (0 = pad).
A `Maze` grid holds codes 1..4; an answer grid additionally marks its path cells with 5.

Sizes: generated and official mazes are square, n x n with 2 <= n <= canvas (30 officially). A smaller maze is
encoded at the top-left of the canvas and every cell outside it is pad (0) in inputs and labels; 0 is the official
ignore_label_id, so padded cells are not trained on. Augmentation transforms the maze itself and re-places it at
the top-left, so the "maze at top-left, pad elsewhere" layout holds for every augmented copy. A rectangular maze
(h x w) is solved as the square of side max(h, w) with walls filling the rest, as the official data pad the
smaller mazes, and its answer is cut back to h x w.

Text format: one maze per block of lines; empty lines separate mazes. A line of spaces as long as a line next to
it is a row of open cells (a maze without a border); other whitespace-only lines separate mazes too. Short lines
are padded with open cells to the longest line of their block, because editors strip trailing spaces (an open row
whose spaces were stripped reads as a separator: use JSON for such mazes). Tabs are refused (a tab has no fixed
width). A block whose every line holds one 'S' and one 'G' is read as one flat maze per line (n*n characters, the
dataset's 900-character strings). A text maze containing 'o' cells is read as a puzzle (the 'o' cells become open)
with that answer attached as `solution`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hrm_mlx.animate import UNKNOWN, Cell
from hrm_mlx.config import setting
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks import register
from hrm_mlx.tasks.base import CanvasTask, GridDataConfig, Picture, span
from hrm_mlx.tasks.formats import csv_questions, detection_sample, is_csv_header, json_entries, mostly, numbered_lines
from hrm_mlx.tasks.grids import DIHEDRAL_INVERSE, dihedral_transform, place, square_side

NAME = "maze"
CANVAS = 30
VOCAB_SIZE = 6  # 0 pad, 1 '#', 2 ' ', 3 'S', 4 'G', 5 'o'
SEQ_LEN = CANVAS * CANVAS

PAD, WALL, OPEN, START, GOAL, PATH = 0, 1, 2, 3, 4, 5
SYMBOLS = "# SGo"  # SYMBOLS[code - 1] is the character of a cell code
MIN_SIZE = 2
MIN_GENERATED_SIZE = 5

_GRID_KEYS = ("grid", "maze", "puzzle", "question")
_SOLUTION_KEYS = ("solution", "answer")
_NAME_KEYS = ("id", "name", "source")

# ASCII byte -> cell code; 255 marks an unknown symbol.
_CODE_OF_BYTE = np.full(256, 255, dtype=np.uint8)
for _code, _symbol in enumerate(SYMBOLS, 1):
    _CODE_OF_BYTE[ord(_symbol)] = _code


@dataclass(eq=False)
class Maze:
    """A puzzle: grid [h,w] uint8 of cell codes (1 wall, 2 open, 3 S, 4 G); `solution` [h,w] uint8 (codes with
    5 on the path) when the input carried the answer; `name` when the input named it (a CSV source, a JSON id)."""

    grid: np.ndarray
    solution: np.ndarray | None = None
    name: str | None = None

    def __post_init__(self):
        self.grid = _as_code_grid(self.grid, "maze")
        if self.solution is not None:
            self.solution = _as_code_grid(self.solution, "solution")


def _as_code_grid(values, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2 or array.dtype.kind not in "iu" or (array.size and (array.min() < 0 or array.max() > 255)):
        raise HrmMlxError(f"a {what} grid is a 2-D array of cell codes")
    return array.astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Parsing


def parse(text: str) -> list[Maze]:
    """Every maze in `text`: text grids separated by blank lines, flat n*n-character lines, JSON objects
    `{"task": "maze", "grid": [rows] or "flat string"}` or lists of them, JSONL, or CSV with a header naming
    `question` (and optionally `answer`)."""
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    stripped = text.strip()
    if not stripped:
        raise HrmMlxError("empty input: no maze found")
    if stripped[0] in "{[":
        mazes = _parse_json(text)
    elif is_csv_header(stripped.split("\n", 1)[0]):
        mazes = _parse_csv(text)
    else:
        mazes = _parse_text(text)
    if not mazes:
        raise HrmMlxError("no maze found in the input")
    return mazes


def looks_like(text: str) -> bool:
    """True when `text` parses as mazes. Large line-oriented inputs are judged on their first megabyte."""
    try:
        return len(parse(detection_sample(text))) > 0
    except HrmMlxError:
        return False


def _codes(line: str, where: str) -> np.ndarray:
    raw = line.encode("utf-8")
    codes = _CODE_OF_BYTE[np.frombuffer(raw, dtype=np.uint8)]
    if len(raw) != len(line) or (codes == 255).any():
        column, bad = next((i, ch) for i, ch in enumerate(line, 1) if ch not in SYMBOLS)
        raise HrmMlxError(
            f"{where}, column {column}: unknown maze symbol {bad!r} (use '#' wall, ' ' open, 'S', 'G', 'o' path)"
        )
    return codes


def _maze_from_answer_grid(grid: np.ndarray) -> Maze:
    """A grid with 'o' cells is an answer: the puzzle is the same grid with the path cells open again."""
    if not (grid == PATH).any():
        return Maze(grid)
    puzzle = np.where(grid == PATH, OPEN, grid).astype(np.uint8)
    return Maze(puzzle, solution=grid)


def _grid_from_rows(rows: list[tuple[str, str]], where: str) -> np.ndarray:
    """A grid from (row location, text) rows; short rows are padded with open cells."""
    width = max(len(text) for _, text in rows)
    return np.stack([_codes(text.ljust(width), row_where) for row_where, text in rows])


def _grid_from_flat(text: str, where: str) -> np.ndarray:
    size = _square_side(len(text))
    if size is None:
        raise HrmMlxError(f"{where}: {len(text)} characters is not a square maze (a flat maze has n*n characters)")
    return _codes(text, where).reshape(size, size)


def _square_side(length: int) -> int | None:
    return square_side(length, MIN_SIZE)


def _parse_text(text: str) -> list[Maze]:
    return [_maze_from_answer_grid(grid) for grid in _grids_from_text(text)]


def _grids_from_text(text: str) -> list[np.ndarray]:
    lines = [(no, line.rstrip("\r")) for no, line in numbered_lines(text.split("\n") + [""])]
    grids: list[np.ndarray] = []
    block: list[tuple[int, str]] = []
    for index, (line_no, line) in enumerate(lines):
        if "\t" in line:
            raise HrmMlxError(f"line {line_no} holds a tab; a maze cell is one character: write open cells as spaces "
                              "(a tab has no fixed width)")
        if line.strip() or _open_row(lines, index):
            block.append((line_no, line))
            continue
        if block:
            grids.extend(_grids_from_block(block))
            block = []
    return grids


def _open_row(lines: list[tuple[int, str]], index: int) -> bool:
    """A line of spaces as long as the maze line before or after it is a row of open cells, not a separator."""
    width = len(lines[index][1])
    if width < MIN_SIZE or lines[index][1].strip(" "):
        return False
    return any(0 <= near < len(lines) and lines[near][1].strip() and len(lines[near][1]) == width
               for near in (index - 1, index + 1))


def _grids_from_block(block: list[tuple[int, str]]) -> list[np.ndarray]:
    if all(text.count("S") == 1 and text.count("G") == 1 for _, text in block):
        return [_grid_from_flat(text, f"line {no}") for no, text in block]  # one flat n*n maze per line
    rows = [(f"line {no}", text) for no, text in block]
    return [_grid_from_rows(rows, f"maze at line {block[0][0]}")]


def _parse_csv(text: str) -> list[Maze]:
    """sapientinc/maze-30x30-hard-1k rows: source,question,answer,rating with flat 900-character grids."""
    mazes = []
    for where, question, answer, source in csv_questions(text.lstrip().rstrip("\r\n")):  # trailing spaces may be open
        grid = _grid_from_flat(question, where)
        solution = _grid_from_flat(answer, f"{where}, answer") if answer else None
        maze = Maze(grid, solution=solution) if solution is not None else _maze_from_answer_grid(grid)
        maze.name = source
        mazes.append(maze)
    return mazes


# JSON ----------------------------------------------------------------------------------------------------------


def _parse_json(text: str) -> list[Maze]:
    return [_maze_from_json(entry, where) for where, entry in json_entries(text, _is_single_grid)]


def _is_single_grid(value: list) -> bool:
    """A bare list of row strings, rather than a list of flat mazes (each with its S and G)."""
    return bool(value) and all(isinstance(row, str) for row in value) and not all(
        row.count("S") == 1 and row.count("G") == 1 for row in value)


def _maze_from_json(entry, where: str) -> Maze:
    if not isinstance(entry, dict):
        return _maze_from_answer_grid(_grid_from_json_value(entry, where))
    task = entry.get("task", NAME)
    if task != NAME:
        raise HrmMlxError(f"{where}: task is {task!r}, not {NAME!r}")
    grid_key = next((key for key in _GRID_KEYS if key in entry), None)
    if grid_key is None:
        raise HrmMlxError(f"{where}: no maze grid (expected a key among {', '.join(_GRID_KEYS)})")
    grid = _grid_from_json_value(entry[grid_key], where)
    solution_key = next((key for key in _SOLUTION_KEYS if entry.get(key) is not None), None)
    if solution_key is None:
        maze = _maze_from_answer_grid(grid)
    else:
        maze = Maze(grid, solution=_grid_from_json_value(entry[solution_key], f"{where}, {solution_key}"))
    maze.name = next((entry[key] for key in _NAME_KEYS if isinstance(entry.get(key), str) and entry[key]), None)
    return maze


def _grid_from_json_value(value, where: str) -> np.ndarray:
    if isinstance(value, str):
        if "\n" not in value.strip("\n"):
            return _grid_from_flat(value.strip("\n"), where)
        grids = _grids_from_text(value)
        if len(grids) != 1:
            raise HrmMlxError(f"{where}: expected one maze, found {len(grids)}")
        return grids[0]
    if isinstance(value, list) and value and all(isinstance(row, str) for row in value):
        return _grid_from_rows([(f"{where}, row {no}", row) for no, row in enumerate(value, 1)], where)
    raise HrmMlxError(f"{where}: a maze grid is a list of row strings or one n*n-character string")


# ---------------------------------------------------------------------------------------------------------------
# Breadth-first search. Works on a copy of the grid framed by walls, so neighbours need no bounds checks.


def _distances(grid: np.ndarray, source: tuple[int, int], passable: np.ndarray | None = None) -> np.ndarray:
    """Steps from `source` to every cell through non-wall cells (or through `passable` cells); -1 = unreachable."""
    height, width = grid.shape
    cells = np.pad(grid != WALL if passable is None else passable, 1, constant_values=False).reshape(-1).tolist()
    stride = width + 2
    start = (source[0] + 1) * stride + source[1] + 1
    distance = [-1] * len(cells)
    distance[start] = 0
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for neighbour in (cell - stride, cell - 1, cell + 1, cell + stride):
            if cells[neighbour] and distance[neighbour] < 0:
                distance[neighbour] = distance[cell] + 1
                queue.append(neighbour)
    return np.array(distance, dtype=np.int32).reshape(height + 2, width + 2)[1:-1, 1:-1]


def _position(grid: np.ndarray, code: int) -> tuple[int, int]:
    r, c = np.argwhere(grid == code)[0]
    return int(r), int(c)


def shortest_path_length(maze: Maze) -> int | None:
    """Steps of a shortest S-G path (the path marks this many - 1 cells), or None when G is unreachable."""
    steps = _distances(maze.grid, _position(maze.grid, START))[_position(maze.grid, GOAL)]
    return int(steps) if steps >= 0 else None


def shortest_path(maze: Maze) -> np.ndarray | None:
    """An answer grid with one BFS shortest path marked 'o', or None when G is unreachable."""
    from_goal = _distances(maze.grid, _position(maze.grid, GOAL))
    r, c = _position(maze.grid, START)
    if from_goal[r, c] < 0:
        return None
    answer = maze.grid.copy()
    height, width = answer.shape
    # Walk downhill in the distance-to-goal field; neighbour order is fixed, so the path is deterministic.
    while from_goal[r, c] > 1:
        for dr, dc in ((-1, 0), (0, -1), (0, 1), (1, 0)):
            nr, nc = r + dr, c + dc
            if 0 <= nr < height and 0 <= nc < width and from_goal[nr, nc] == from_goal[r, c] - 1:
                r, c = nr, nc
                break
        answer[r, c] = PATH
    return answer


# ---------------------------------------------------------------------------------------------------------------
# Validation and checking


def validate(maze: Maze, canvas: int = CANVAS) -> None:
    """Raise HrmMlxError when the maze cannot be used: narrower than MIN_SIZE, wider or taller than the canvas,
    symbols other than wall/open/S/G, not exactly one S and one G, or G unreachable from S (and a wrong attached
    answer)."""
    grid = maze.grid
    height, width = grid.shape
    if min(height, width) < MIN_SIZE or max(height, width) > canvas:
        raise HrmMlxError(f"the maze is {height}x{width}; sizes from {MIN_SIZE}x{MIN_SIZE} to {canvas}x{canvas} fit")
    unknown = sorted(set(np.unique(grid).tolist()) - {WALL, OPEN, START, GOAL})
    if unknown:
        names = ", ".join(repr(SYMBOLS[code - 1]) if 1 <= code <= 5 else f"code {code}" for code in unknown)
        raise HrmMlxError(f"the maze contains {names}; a puzzle holds only '#', ' ', 'S' and 'G'")
    for code, name in ((START, "start 'S'"), (GOAL, "goal 'G'")):
        count = int((grid == code).sum())
        if count != 1:
            raise HrmMlxError(f"the maze has {count} {name} cells; it needs exactly one")
    if shortest_path_length(maze) is None:
        raise HrmMlxError("the goal 'G' cannot be reached from the start 'S'")
    if maze.solution is not None:
        ok, reason = check(maze, maze.solution)
        if not ok:
            raise HrmMlxError(f"the answer given with the maze is wrong: {reason}")


def check(maze: Maze, answer: np.ndarray) -> tuple[bool, str]:
    """(True, "solved") when `answer` keeps every wall, S and G, and its 'o' cells are exactly the inner cells
    of one shortest S-G path (any shortest path counts); otherwise (False, the first problem found).
    `maze` must be valid (see validate)."""
    answer = np.asarray(answer)
    grid = maze.grid
    if answer.shape != grid.shape:
        return False, f"the answer is {'x'.join(map(str, answer.shape))}, the maze {'x'.join(map(str, grid.shape))}"
    expected_fixed = np.isin(grid, (WALL, START, GOAL))
    for r, c in np.argwhere(expected_fixed & (answer != grid)):
        return False, f"row {r + 1}, column {c + 1} should stay {SYMBOLS[grid[r, c] - 1]!r}"
    for r, c in np.argwhere(~expected_fixed & (answer != OPEN) & (answer != PATH)):
        return False, f"row {r + 1}, column {c + 1} holds {_symbol(answer[r, c])!r}; open cells become ' ' or 'o'"
    on_route = (answer == PATH) | (grid == START) | (grid == GOAL)
    route_steps = _distances(grid, _position(grid, START), passable=on_route)
    steps_to_goal = route_steps[_position(grid, GOAL)]
    if steps_to_goal < 0:
        return False, "the 'o' cells do not connect S to G"
    shortest = shortest_path_length(maze)
    if steps_to_goal > shortest:
        return False, f"the marked path takes {steps_to_goal} steps; the shortest takes {shortest}"
    extra = int((answer == PATH).sum()) - (shortest - 1)
    if extra > 0:
        return False, f"{extra} 'o' cells are not on the path from S to G"
    return True, "solved"


def _symbol(code: int) -> str:
    return SYMBOLS[code - 1] if 1 <= code <= len(SYMBOLS) else "?"


# ---------------------------------------------------------------------------------------------------------------
# Encoding


def _place_on_canvas(grid: np.ndarray, canvas: int) -> np.ndarray:
    size = grid.shape[0]
    if grid.shape[0] != grid.shape[1] or size > canvas:
        raise HrmMlxError(f"a {grid.shape[0]}x{grid.shape[1]} maze does not fit the {canvas}x{canvas} canvas")
    return place(grid, canvas).reshape(canvas * canvas)


def encode(maze: Maze, canvas: int = CANVAS) -> np.ndarray:
    """Input tokens int32 [canvas*canvas]: the maze at the top-left (a rectangular one squared with walls), pad (0)
    elsewhere."""
    height, width = maze.grid.shape
    side = max(height, width)
    square = np.full((side, side), WALL, dtype=np.uint8)
    square[:height, :width] = maze.grid
    return _place_on_canvas(square, canvas)


def encode_answer(answer: np.ndarray, canvas: int = CANVAS) -> np.ndarray:
    """Label tokens int32 [canvas*canvas]; cells outside the maze are 0 (the official ignore label)."""
    return _place_on_canvas(np.asarray(answer), canvas)


def free_cells(tokens: np.ndarray) -> np.ndarray:
    """Where a model fills in the answer: the open cells (a path 'o' or stays ' '); walls, S, G and pad stay."""
    return np.asarray(tokens) == OPEN


def side(maze: Maze) -> int:
    """The side of the square canvas the maze needs."""
    return int(max(maze.grid.shape))


def decode(tokens: np.ndarray, maze: Maze | None = None) -> np.ndarray:
    """Answer grid uint8 [h,w] cropped from canvas tokens. The size comes from `maze`, or without it from the
    run of non-pad tokens that starts row 0 (a maze row never contains pad)."""
    tokens = np.asarray(tokens).reshape(-1)
    canvas = _square_side(tokens.size)
    if canvas is None:
        raise HrmMlxError(f"{tokens.size} tokens do not form a square canvas")
    board = tokens.reshape(canvas, canvas)
    height, width = maze.grid.shape if maze is not None else (_size_on_canvas(board),) * 2
    return board[:height, :width].astype(np.uint8)


def _size_on_canvas(board: np.ndarray) -> int:
    pad_columns = np.flatnonzero(board[0] == PAD)
    return int(pad_columns[0]) if pad_columns.size else board.shape[0]


def to_text(item: Maze | np.ndarray, compact: bool = False) -> str:
    """Rows of symbols joined by newlines (trailing spaces kept), or one n*n-character line when `compact`.
    Codes outside 1..5 (e.g. a predicted pad) print as '?'."""
    grid = item.grid if isinstance(item, Maze) else np.asarray(item)
    rows = ["".join(_symbol(int(code)) for code in row) for row in grid]
    return "".join(rows) if compact else "\n".join(rows)


# ---------------------------------------------------------------------------------------------------------------
# Generator


def _carve_perfect_maze(size: int, rng: np.random.Generator) -> np.ndarray:
    """Randomized depth-first search ("recursive backtracker") on rooms at odd coordinates of an odd-sized grid:
    every pair of rooms is joined by exactly one corridor, and the long corridors make long paths."""
    rooms = (size - 1) // 2
    grid = np.full((size, size), WALL, dtype=np.uint8)
    visited = np.zeros((rooms, rooms), dtype=bool)
    first = (int(rng.integers(rooms)), int(rng.integers(rooms)))
    visited[first] = True
    grid[2 * first[0] + 1, 2 * first[1] + 1] = OPEN
    stack = [first]
    while stack:
        r, c = stack[-1]
        unvisited = [
            (r + dr, c + dc)
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
            if 0 <= r + dr < rooms and 0 <= c + dc < rooms and not visited[r + dr, c + dc]
        ]
        if not unvisited:
            stack.pop()
            continue
        nr, nc = unvisited[int(rng.integers(len(unvisited)))]
        visited[nr, nc] = True
        grid[r + nr + 1, c + nc + 1] = OPEN  # the wall between the two rooms
        grid[2 * nr + 1, 2 * nc + 1] = OPEN
        stack.append((nr, nc))
    return grid


def _open_loops(grid: np.ndarray, loop_fraction: float, rng: np.random.Generator) -> None:
    """Knock down this fraction of the inner walls that separate two rooms, so some mazes have several routes."""
    size = grid.shape[0]
    rr, cc = np.meshgrid(np.arange(1, size - 1), np.arange(1, size - 1), indexing="ij")
    between_rooms = ((rr + cc) % 2 == 1) & (grid[1:-1, 1:-1] == WALL)
    candidates = np.argwhere(between_rooms) + 1
    count = int(round(loop_fraction * len(candidates)))
    for r, c in candidates[rng.permutation(len(candidates))[:count]]:
        grid[r, c] = OPEN


def _stretch_to_even(grid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grow an odd maze by one row and one column: duplicating an inner wall row (and column) only lengthens
    the corridors that cross it, so the maze keeps its topology."""
    inner_wall_lines = np.arange(2, grid.shape[0] - 2, 2)
    row, col = rng.choice(inner_wall_lines), rng.choice(inner_wall_lines)
    grid = np.insert(grid, row, grid[row], axis=0)
    return np.insert(grid, col, grid[:, col], axis=1)


def random_layout(size: int, rng: np.random.Generator, loop_fraction: float = 0.1) -> np.ndarray:
    """Walls and open cells of a random size x size maze (no S or G yet)."""
    odd_size = size if size % 2 else size - 1
    grid = _carve_perfect_maze(odd_size, rng)
    _open_loops(grid, loop_fraction, rng)
    return grid if size % 2 else _stretch_to_even(grid, rng)


def _place_start_and_goal(grid: np.ndarray, min_path: int, rng: np.random.Generator, tries: int = 8,
                          farthest: bool = False) -> Maze | None:
    """S on a random open cell, G on a random open cell at least `min_path` steps away (with `farthest`, on one
    of the open cells farthest from S: the long paths that need many reasoning steps); None if none found."""
    open_cells = np.argwhere(grid == OPEN)
    for _ in range(tries):
        start = tuple(open_cells[rng.integers(len(open_cells))])
        steps = _distances(grid, start)
        reach = max(min_path, int(steps.max()) if farthest else 1, 1)
        far_enough = np.argwhere(steps >= reach)
        if len(far_enough):
            goal = tuple(far_enough[rng.integers(len(far_enough))])
            placed = grid.copy()
            placed[start] = START
            placed[goal] = GOAL
            return Maze(placed)
    return None


def _size_range(size: int | tuple[int, int], canvas: int) -> tuple[int, int]:
    return span(size, "maze size", MIN_GENERATED_SIZE, canvas)


def make_maze(
    size: int, rng: np.random.Generator, loop_fraction: float = 0.1, min_path: int = 1, max_attempts: int = 100,
    farthest: bool = False,
) -> tuple[Maze, np.ndarray]:
    """One (maze, solution) pair; `min_path` is the least number of S-G steps (the "hard" filter); `farthest`
    puts G on a cell farthest from S."""
    if not 0.0 <= loop_fraction <= 1.0:
        raise HrmMlxError(f"loop_fraction must lie in 0..1, got {loop_fraction}")
    for _ in range(max_attempts):
        maze = _place_start_and_goal(random_layout(size, rng, loop_fraction), min_path, rng, farthest=farthest)
        if maze is not None:
            return maze, shortest_path(maze)
    raise HrmMlxError(
        f"no {size}x{size} maze with a path of {min_path}+ steps after {max_attempts} tries; lower min_path"
    )


def generate(
    n: int,
    rng: np.random.Generator,
    size: int | tuple[int, int] = CANVAS,
    loop_fraction: float | tuple[float, float] = 0.1,
    min_path: int = 1,
    canvas: int = CANVAS,
    far_goal: float = 0.0,
) -> list[tuple[Maze, np.ndarray]]:
    """n random (maze, solution) pairs. `size` is exact or an inclusive (low, high) range drawn per maze
    (5..canvas; odd sizes are carved directly, even ones are stretched from the odd size below).
    `loop_fraction` (exact, or a (low, high) range drawn per maze) of the remaining inner walls are removed to
    create loops; S and G are at least
    `min_path` steps apart (so the path marks at least min_path - 1 cells); in a `far_goal` fraction of the
    mazes G is a cell farthest from S; the solution marks one BFS shortest path. Speed: ~1.5 ms per 30x30 maze;
    ~15 ms with min_path=110 (Maze-Hard-like)."""
    low, high = _size_range(size, canvas)
    if not 0.0 <= far_goal <= 1.0:
        raise HrmMlxError(f"far_goal must lie in 0..1, got {far_goal}")
    loops_low, loops_high = (loop_fraction, loop_fraction) if np.isscalar(loop_fraction) else loop_fraction
    pairs = []
    for _ in range(n):
        side = int(rng.integers(low, high + 1))
        farthest = bool(far_goal) and rng.random() < far_goal
        loops = loops_low if loops_low == loops_high else float(rng.uniform(loops_low, loops_high))
        maze, solution = make_maze(side, rng, loops, min_path, farthest=farthest)
        maze.solution = solution
        pairs.append((maze, solution))
    return pairs


def generate_batch(
    n: int,
    rng: np.random.Generator,
    size: int | tuple[int, int] = CANVAS,
    loop_fraction: float | tuple[float, float] = 0.1,
    min_path: int = 1,
    canvas: int = CANVAS,
    far_goal: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) int32 [n, canvas*canvas], ready for training."""
    pairs = generate(n, rng, size, loop_fraction, min_path, canvas, far_goal)
    empty = np.zeros((0, canvas * canvas), np.int32)
    inputs = np.stack([encode(maze, canvas) for maze, _ in pairs]) if pairs else empty
    labels = np.stack([encode_answer(solution, canvas) for _, solution in pairs]) if pairs else empty
    return inputs, labels


# ---------------------------------------------------------------------------------------------------------------
# Augmentation: the 8 symmetries of the square (hrm_mlx.tasks.grids), applied to the maze at the top-left.


@dataclass(frozen=True)
class MazeTransform:
    dihedral: int  # 0..7, see dihedral_transform
    size: int  # side of the maze on the canvas; only that square is transformed


def random_transform(rng: np.random.Generator, size: int) -> MazeTransform:
    return MazeTransform(int(rng.integers(8)), size)


def _transform_tokens(tokens: np.ndarray, size: int, dihedral: int) -> np.ndarray:
    tokens = np.asarray(tokens)
    canvas = _square_side(tokens.size)
    board = tokens.reshape(canvas, canvas).copy()
    board[:size, :size] = dihedral_transform(board[:size, :size], dihedral)
    return board.reshape(tokens.shape).astype(np.int32)


def apply_transform(tokens: np.ndarray, transform: MazeTransform) -> np.ndarray:
    """Transform the maze square of canvas tokens [canvas*canvas]; it stays at the top-left, pad stays pad."""
    return _transform_tokens(tokens, transform.size, transform.dihedral)


def invert_transform(tokens: np.ndarray, transform: MazeTransform) -> np.ndarray:
    """Undo apply_transform (e.g. to map a prediction on an augmented maze back to the original)."""
    return _transform_tokens(tokens, transform.size, DIHEDRAL_INVERSE[transform.dihedral])


def augment(
    inputs: np.ndarray, labels: np.ndarray | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None, list[MazeTransform]]:
    """One random dihedral transform per example of a canvas batch [B, canvas*canvas], applied identically to
    inputs and labels (labels may be None at inference). Returns (inputs, labels, transforms)."""
    inputs = np.asarray(inputs)
    canvas = _square_side(inputs.shape[1])
    transforms = [random_transform(rng, _size_on_canvas(x.reshape(canvas, canvas))) for x in inputs]
    new_inputs = np.stack([apply_transform(x, t) for x, t in zip(inputs, transforms)]) if transforms else inputs
    new_labels = None
    if labels is not None:
        new_labels = np.stack([apply_transform(y, t) for y, t in zip(labels, transforms)]) if transforms else labels
    return new_inputs, new_labels, transforms


def invert_augmentation(tokens: np.ndarray, transforms: list[MazeTransform]) -> np.ndarray:
    """Map a batch of token predictions [B, canvas*canvas] on augmented mazes back to the original mazes."""
    return np.stack([invert_transform(x, t) for x, t in zip(tokens, transforms)])


# ---------------------------------------------------------------------------------------------------------------
# The task


@dataclass
class MazeData(GridDataConfig):
    size: int | list[int] = setting(30, "maze side, or [low, high] drawn per maze (5..canvas)")
    canvas: int = setting(30, "side of the token canvas (seq_len = canvas^2); smaller mazes sit at its top-left",
                          minimum=MIN_SIZE)
    min_path: int = setting(1, "least number of S-G steps (the 'hard' filter; Maze-Hard-like: 110 on 30x30)")
    loop_fraction: float | list[float] = setting(0.1, "share of inner walls removed (loops): a number, or [low, "
                                                 "high] drawn per maze", minimum=0.0)
    far_goal: float = setting(0.0, "fraction of mazes whose goal is a cell farthest from the start (long paths)",
                              minimum=0.0)
    aug: bool = setting(False, "official: the 8 dihedral transforms of every training maze")
    repo: str = setting("sapientinc/maze-30x30-hard-1k", "Hugging Face dataset of the 'hub' source")

    def validate(self) -> None:
        if self.source == "generate":
            _size_range(self.size, self.canvas)
        loops = [self.loop_fraction] if isinstance(self.loop_fraction, (int, float)) else self.loop_fraction
        if len(loops) not in (1, 2) or not all(0.0 <= value <= 1.0 for value in loops):
            raise HrmMlxError(f"loop_fraction must lie in 0..1 (a number or [low, high]), got {self.loop_fraction}")
        if not 0.0 <= self.far_goal <= 1.0:
            raise HrmMlxError(f"far_goal must lie in 0..1, got {self.far_goal}")


_STYLES = {WALL: ("██", "dim"), OPEN: ("  ", ""), START: ("SS", "bold green"), GOAL: ("GG", "bold red"),
           PATH: ("oo", "bold yellow")}  # terminal cells
COLOURS = {WALL: "#2b2b2b", OPEN: "#ffffff", START: "#2ecc40", GOAL: "#ff4136", PATH: "#ffb000"}  # picture cells


class MazeTask(CanvasTask):
    name = NAME
    canvas = CANVAS
    extensions = (".txt", ".csv", ".json", ".jsonl", ".maze")
    vocab_size = VOCAB_SIZE
    official_seq_len = SEQ_LEN
    default_recipe = "maze-cpu"
    DataConfig = MazeData
    free_token = OPEN
    csv_symbols = {symbol: code for code, symbol in enumerate(SYMBOLS, 1)}
    title = "Maze shortest path"
    example = "examples/maze.txt"
    proven_by_check = True  # a marked path the checker accepts is a shortest path

    parse = staticmethod(parse)
    looks_like = staticmethod(looks_like)
    to_text = staticmethod(to_text)
    validate = staticmethod(validate)
    encode = staticmethod(encode)
    decode = staticmethod(decode)
    check = staticmethod(check)
    side = staticmethod(side)

    def resembles(self, text: str) -> bool:
        return "#" in text and mostly(text, "#SGo")

    def model_info(self, data: MazeData) -> dict:
        return {**super().model_info(data), "canvas": data.canvas}

    def data_for_model(self, info: dict) -> dict:
        return {**super().data_for_model(info), **self.options(info)}

    def symmetric_copies(self, maze: Maze, count: int) -> list[tuple[Maze, Callable]]:
        """The maze's rotations and reflections (at most 7), in a fixed order."""
        return [(Maze(dihedral_transform(maze.grid, index)),
                 lambda answer, i=index: dihedral_transform(answer, DIHEDRAL_INVERSE[i]))
                for index in range(1, min(count, 7) + 1)]

    def puzzle_from_tokens(self, tokens: np.ndarray) -> Maze:
        return Maze(decode(tokens))

    def grid_picture(self, maze: Maze, grid: np.ndarray, changed=frozenset()) -> Picture:
        """Walls as blocks, S, G and the path 'o' in colour, cells changed at the step shown reversed."""
        def cell(r: int, c: int, code: int) -> tuple[str, str]:
            text, style = _STYLES.get(code, ("??", "red"))
            return text, style + (" reverse" if (r, c) in changed else "")

        return Picture([[cell(r, c, int(code)) for c, code in enumerate(row)] for r, row in enumerate(grid)])

    def frame(self, maze: Maze, grid: np.ndarray, changed=frozenset()) -> tuple[list, None]:
        """Walls, open cells, S, G and the path in colour; changed cells framed in red (the path seen growing)."""
        return [[Cell(COLOURS.get(int(code), UNKNOWN), outline="#d62728" if (r, c) in changed else None)
                 for c, code in enumerate(row)] for r, row in enumerate(np.asarray(grid))], None

    def generate_batch(self, n: int, rng: np.random.Generator, data: MazeData) -> tuple[np.ndarray, np.ndarray]:
        size = tuple(data.size) if isinstance(data.size, list) else data.size
        loops = tuple(data.loop_fraction) if isinstance(data.loop_fraction, list) else data.loop_fraction
        return generate_batch(n, rng, size, loops, data.min_path, data.canvas, data.far_goal)

    def csv_cells(self, width: int, where: str) -> int:
        if _square_side(width) is None:
            raise HrmMlxError(f"{where}: mazes of {width} cells are not square")
        return width

    def versions(self, inputs: np.ndarray, labels: np.ndarray, data: MazeData,
                 rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        if not data.aug:
            return [(inputs, labels)]
        size = decode(inputs).shape[0]
        return [(apply_transform(inputs, MazeTransform(d, size)), apply_transform(labels, MazeTransform(d, size)))
                for d in range(8)]


TASK = register(MazeTask())
