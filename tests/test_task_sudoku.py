import json
import subprocess
import sys

import numpy as np
import pytest

from hrm_mlx.tasks import sudoku
from user_errors import raises_one_line

PUZZLE = "530070000600195000098000060800060003400803001700020006060000280000419005000080079"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
SECOND = "000000010400000000020000000000050407008000300001090000300400200050100000000806000"


def grid_of(text: str) -> np.ndarray:
    return np.array([int(ch) for ch in text], dtype=np.int8).reshape(9, 9)

# --- parsing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", [".", "0", "_"])
def test_parse_81_char_string_with_each_blank_symbol(blank):
    [puzzle] = sudoku.parse(PUZZLE.replace("0", blank) + "\n")
    np.testing.assert_array_equal(puzzle.grid, grid_of(PUZZLE))
    assert puzzle.grid.dtype == np.int8 and puzzle.solution is None


def test_parse_ignores_whitespace_inside_a_line():
    spaced = " ".join(PUZZLE)
    [puzzle] = sudoku.parse(spaced)
    np.testing.assert_array_equal(puzzle.grid, grid_of(PUZZLE))


def test_parse_several_81_char_lines():
    puzzles = sudoku.parse(f"{PUZZLE}\n\n{SECOND}\n{PUZZLE.replace('0', '.')}\n")
    assert len(puzzles) == 3
    np.testing.assert_array_equal(puzzles[1].grid, grid_of(SECOND))


PRETTY = """
+-------+-------+-------+
| 5 3 . | . 7 . | . . . |
| 6 . . | 1 9 5 | . . . |
| . 9 8 | . . . | . 6 . |
+-------+-------+-------+
| 8 . . | . 6 . | . . 3 |
| 4 . . | 8 . 3 | . . 1 |
| 7 . . | . 2 . | . . 6 |
+-------+-------+-------+
| . 6 . | . . . | 2 8 . |
| . . . | 4 1 9 | . . 5 |
| . . . | . 8 . | . 7 9 |
+-------+-------+-------+
"""

DASHED = """5 3 0 | 0 7 0 | 0 0 0
6 0 0 | 1 9 5 | 0 0 0
0 9 8 | 0 0 0 | 0 6 0
------+-------+------
8 0 0 | 0 6 0 | 0 0 3
4 0 0 | 8 0 3 | 0 0 1
7 0 0 | 0 2 0 | 0 0 6
---------------------
0 6 0 | 0 0 0 | 2 8 0
0 0 0 | 4 1 9 | 0 0 5
0 0 0 | 0 8 0 | 0 7 9
"""


@pytest.mark.parametrize("text", [PRETTY, DASHED, "\n".join(PUZZLE[i : i + 9] for i in range(0, 81, 9))])
def test_parse_9x9_grids_with_and_without_separators(text):
    [puzzle] = sudoku.parse(text)
    np.testing.assert_array_equal(puzzle.grid, grid_of(PUZZLE))


def test_parse_several_grids_with_and_without_blank_lines_between():
    grid_lines = "\n".join(SECOND[i : i + 9] for i in range(0, 81, 9))
    puzzles = sudoku.parse(PRETTY + "\n" + grid_lines + "\n" + grid_lines + "\n\n" + DASHED)
    assert len(puzzles) == 4
    np.testing.assert_array_equal(puzzles[1].grid, grid_of(SECOND))
    np.testing.assert_array_equal(puzzles[3].grid, grid_of(PUZZLE))


def test_parse_json_forms():
    rows = grid_of(PUZZLE).tolist()
    forms = [
        json.dumps({"task": "sudoku", "grid": PUZZLE}),
        json.dumps({"grid": rows}),
        json.dumps({"puzzle": PUZZLE.replace("0", ".")}),
        json.dumps(rows),
        json.dumps({"grid": [PUZZLE[i : i + 9] for i in range(0, 81, 9)]}),
        json.dumps({"grid": PRETTY}),
    ]
    for text in forms:
        [puzzle] = sudoku.parse(text)
        np.testing.assert_array_equal(puzzle.grid, grid_of(PUZZLE), err_msg=text)


def test_parse_json_list_jsonl_and_known_answers():
    listed = json.dumps([{"task": "sudoku", "grid": PUZZLE, "solution": SOLUTION}, {"grid": SECOND}, PUZZLE])
    puzzles = sudoku.parse(listed)
    assert len(puzzles) == 3
    np.testing.assert_array_equal(puzzles[0].solution, grid_of(SOLUTION))
    assert puzzles[1].solution is None

    jsonl = "\n".join(json.dumps({"grid": p, "answer": SOLUTION if p == PUZZLE else None}) for p in (PUZZLE, SECOND))
    puzzles = sudoku.parse(jsonl + "\n")
    assert len(puzzles) == 2
    np.testing.assert_array_equal(puzzles[0].solution, grid_of(SOLUTION))
    np.testing.assert_array_equal(puzzles[1].grid, grid_of(SECOND))


def test_parse_csv_with_and_without_answers():
    dotted = PUZZLE.replace("0", ".")
    with_answers = f"source,question,answer,rating\nsrc,{dotted},{SOLUTION},12\nsrc,{SECOND},,3\n"
    puzzles = sudoku.parse(with_answers)
    assert len(puzzles) == 2
    np.testing.assert_array_equal(puzzles[0].grid, grid_of(PUZZLE))
    np.testing.assert_array_equal(puzzles[0].solution, grid_of(SOLUTION))
    assert puzzles[1].solution is None

    [puzzle] = sudoku.parse(f"question\n{dotted}\n")
    np.testing.assert_array_equal(puzzle.grid, grid_of(PUZZLE))


def test_to_text_round_trips_through_parse():
    puzzle = sudoku.SudokuPuzzle(grid_of(PUZZLE))
    assert sudoku.to_text(puzzle, compact=True) == PUZZLE.replace("0", ".")
    assert sudoku.to_text(grid_of(SOLUTION)).splitlines()[0] == SOLUTION[:9]
    for compact in (False, True):
        [back] = sudoku.parse(sudoku.to_text(puzzle, compact=compact))
        np.testing.assert_array_equal(back.grid, puzzle.grid)


def test_looks_like():
    assert sudoku.looks_like(PUZZLE)
    assert sudoku.looks_like(PRETTY)
    assert sudoku.looks_like(json.dumps({"task": "sudoku", "grid": PUZZLE}))
    assert not sudoku.looks_like(json.dumps({"task": "maze", "grid": PUZZLE}))
    assert not sudoku.looks_like("#####\n#S G#\n#####")
    assert not sudoku.looks_like(json.dumps({"train": [], "test": []}))
    assert not sudoku.looks_like("")


@pytest.mark.slow
def test_looks_like_judges_large_inputs_on_their_head():
    grid_lines = "\n".join(PUZZLE[i : i + 9] for i in range(0, 81, 9)) + "\n"
    big = grid_lines * (2 * (1 << 20) // len(grid_lines))  # no blank lines: the cut lands inside a grid
    assert sudoku.looks_like(big)


# --- bad inputs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty input"),
        ("   \n\n", "empty input"),
        (PUZZLE[:80], "line 1: found 80 cells"),
        ("\n" + PUZZLE[:40] + "x" + PUZZLE[41:], "line 2: unknown sudoku symbol 'x'"),
        ("\n".join(PUZZLE[i : i + 9] for i in range(0, 72, 9)), "has 8 rows"),
        ("123456789\n12345678\n", "line 2: found 8 cells"),
        ('{"grid": "123"', "malformed JSON"),
        ('{"grid": "' + PUZZLE + '"}\n{"grid": oops}\n', "malformed JSON on line 2"),
        ('{"task": "maze", "grid": "' + PUZZLE + '"}', "task is 'maze'"),
        ('{"cells": "' + PUZZLE + '"}', "no sudoku grid"),
        ('{"grid": [[1, 2, 3]]}', "9 lists of 9"),
        (json.dumps({"grid": [[10] * 9] * 9}), "numbers 0-9"),
        (json.dumps({"grid": PUZZLE[:70]}), "81 cells, found 70"),
        ("source,question,answer,rating\nx,,,1\n", "CSV line 2: the question field"),
        ("question,answer\n" + PUZZLE + "," + SOLUTION[:50] + "\n", "CSV line 2, answer: a sudoku has 81 cells"),
    ],
)
def test_bad_inputs_raise_one_line_errors(text, match):
    with raises_one_line(match):
        sudoku.parse(text)


def test_validate_rejects_conflicting_givens_and_wrong_answers():
    sudoku.validate(sudoku.parse(PUZZLE)[0])
    conflicting = grid_of(PUZZLE)
    conflicting[0, 2] = 5  # a second 5 in row 1 (and in box 1)
    with raises_one_line("givens conflict: row 1 has 2 5s"):
        sudoku.validate(sudoku.SudokuPuzzle(conflicting))
    column_clash = grid_of(PUZZLE)
    column_clash[8, 0] = 5  # row 9 and box 7 are fine, column 1 now holds two 5s
    with raises_one_line("column 1"):
        sudoku.validate(sudoku.SudokuPuzzle(column_clash))
    wrong_answer = grid_of(SOLUTION)
    wrong_answer[0, 2] = 3
    with raises_one_line("answer given with the puzzle is wrong"):
        sudoku.validate(sudoku.SudokuPuzzle(grid_of(PUZZLE), solution=wrong_answer))
    with raises_one_line("9x9"):
        sudoku.validate(sudoku.SudokuPuzzle(np.zeros((4, 4), np.int8)))
    with raises_one_line("0-9"):
        sudoku.SudokuPuzzle(np.full((9, 9), 12))


# --- encoding --------------------------------------------------------------------------------------------------


def test_official_encoding():
    puzzle = sudoku.SudokuPuzzle(grid_of(PUZZLE))
    tokens = sudoku.encode(puzzle)
    assert tokens.dtype == np.int32 and tokens.shape == (sudoku.SEQ_LEN,)
    assert tokens[0] == 6 and tokens[2] == sudoku.BLANK_TOKEN  # '5' -> 6, blank -> 1
    assert set(np.unique(tokens)) <= set(range(1, sudoku.VOCAB_SIZE))
    labels = sudoku.encode_answer(grid_of(SOLUTION))
    assert labels.dtype == np.int32 and labels.min() == 2 and labels.max() == 10
    assert (sudoku.NAME, sudoku.VOCAB_SIZE, sudoku.SEQ_LEN) == ("sudoku", 11, 81)


@pytest.mark.parametrize(
    "text", [PUZZLE, PRETTY, DASHED, json.dumps({"grid": grid_of(PUZZLE).tolist()}), "question\n" + PUZZLE]
)
def test_encode_decode_identity_for_every_format(text):
    [puzzle] = sudoku.parse(text)
    np.testing.assert_array_equal(sudoku.decode(sudoku.encode(puzzle), puzzle), puzzle.grid)
    np.testing.assert_array_equal(sudoku.decode(sudoku.encode_answer(grid_of(SOLUTION))), grid_of(SOLUTION))


def test_decode_turns_pad_and_stray_tokens_into_blanks():
    tokens = sudoku.encode_answer(grid_of(SOLUTION))
    tokens[:3] = [0, 1, 10]
    decoded = sudoku.decode(tokens)
    assert decoded.dtype == np.int8 and list(decoded[0, :3]) == [0, 0, 9]


# --- checker ---------------------------------------------------------------------------------------------------


def test_check_accepts_the_solution():
    assert sudoku.check(sudoku.SudokuPuzzle(grid_of(PUZZLE)), grid_of(SOLUTION)) == (True, "solved")


def test_check_rejects_wrong_answers():
    puzzle = sudoku.SudokuPuzzle(grid_of(PUZZLE))
    solution = grid_of(SOLUTION)

    changed_given = solution.copy()
    changed_given[:, [0, 1]] = changed_given[:, [1, 0]]  # still a valid grid, but the given 5 at r1c1 moved
    ok, reason = sudoku.check(puzzle, changed_given)
    assert not ok and "given 5 at row 1, column 1" in reason

    box_duplicate = solution.copy()
    box_duplicate[:, [2, 3]] = box_duplicate[:, [3, 2]]  # rows and columns stay permutations, boxes do not
    ok, reason = sudoku.check(sudoku.SudokuPuzzle(np.zeros((9, 9), np.int8)), box_duplicate)
    assert not ok and reason.startswith("box 1 has 2")

    blank = solution.copy()
    blank[4, 4] = 0
    assert sudoku.check(puzzle, blank) == (False, "row 5, column 5 is blank")

    row_duplicate = solution.copy()
    row_duplicate[0, 2] = 3  # r1c3 is not a given
    ok, reason = sudoku.check(puzzle, row_duplicate)
    assert not ok and reason == "row 1 has 2 3s"

    assert not sudoku.check(puzzle, solution[:8])[0]


# --- solver ----------------------------------------------------------------------------------------------------


def test_solver():
    np.testing.assert_array_equal(sudoku.solve(grid_of(PUZZLE)), grid_of(SOLUTION))
    assert sudoku.count_solutions(grid_of(PUZZLE)) == 1
    assert sudoku.count_solutions(sudoku.SudokuPuzzle(grid_of(SECOND))) == 1  # a 17-given puzzle
    assert sudoku.check(sudoku.SudokuPuzzle(grid_of(SECOND)), sudoku.solve(grid_of(SECOND)))[0]
    assert sudoku.count_solutions(np.zeros((9, 9), np.int8), limit=5) == 5
    conflicting = grid_of(PUZZLE)
    conflicting[0, 2] = 5
    assert sudoku.count_solutions(conflicting) == 0 and sudoku.solve(conflicting) is None


def test_solver_sees_two_solutions_of_a_deadly_pattern():
    # Blank a rectangle of cells holding digits a,b / b,a in two rows, two columns and two boxes:
    # swapping them gives a second solution.
    grid = grid_of(SOLUTION)
    assert (grid[0, 0], grid[0, 3], grid[1, 0], grid[1, 3]) == (5, 6, 6, 1)
    for r1, r2 in [(r1, r2) for r1 in range(9) for r2 in range(r1 + 1, 9) if r1 // 3 == r2 // 3]:
        for c1, c2 in [(c1, c2) for c1 in range(9) for c2 in range(c1 + 1, 9) if c1 // 3 != c2 // 3]:
            if grid[r1, c1] == grid[r2, c2] and grid[r1, c2] == grid[r2, c1]:
                holed = grid.copy()
                holed[[r1, r1, r2, r2], [c1, c2, c1, c2]] = 0
                assert sudoku.count_solutions(holed) == 2
                return
    pytest.fail("the fixture has no deadly rectangle")


def test_solving_and_checking_never_import_numba():
    # Importing numba alone takes ~0.25 s (compiling the search 1-3 s more): the first answer must not pay for it.
    code = ("import sys; from hrm_mlx import solve; from hrm_mlx.tasks import sudoku; "
            f"p = sudoku.parse({PUZZLE!r})[0]; sudoku.validate(p); sudoku.check(p, p.grid); "
            "print('numba' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_plain_python_search_agrees_with_the_compiled_one():
    # The one search runs compiled by numba (generation) or as Python on lists (without numba): same answers.
    pytest.importorskip("numba")
    plain = sudoku._search
    rng = np.random.default_rng(5)
    grids = [grid_of(PUZZLE), grid_of(SECOND), np.zeros((9, 9), np.int8)]
    grids += [p.grid for p, _ in sudoku.generate(4, rng, givens=(24, 30))]
    for grid in grids:
        for limit in (1, 2, 3):
            first = [0] * 81
            in_order = np.tile(np.arange(9), (81, 1)).tolist()
            found = plain(grid.reshape(81).astype(int).tolist(), limit, in_order, first, 9, 3, 3, sudoku.UNBOUNDED)
            compiled, solution = sudoku._run_search(grid, limit)
            assert found == compiled
            np.testing.assert_array_equal(np.array(first).reshape(9, 9), solution)


# --- generator -------------------------------------------------------------------------------------------------


def test_generated_puzzles_are_unique_with_the_requested_givens():
    pairs = sudoku.generate(8, np.random.default_rng(0), givens=30)
    for puzzle, solution in pairs:
        assert (puzzle.grid != 0).sum() == 30
        assert sudoku.count_solutions(puzzle.grid) == 1
        assert sudoku.check(puzzle, solution) == (True, "solved")
        np.testing.assert_array_equal(puzzle.solution, solution)
        sudoku.validate(puzzle)


def test_generator_given_range_and_low_givens():
    pairs = sudoku.generate(6, np.random.default_rng(1), givens=(25, 40))
    assert all(25 <= (p.grid != 0).sum() <= 40 and sudoku.count_solutions(p.grid) == 1 for p, _ in pairs)
    [(puzzle, _)] = sudoku.generate(1, np.random.default_rng(2), givens=24)
    assert (puzzle.grid != 0).sum() == 24 and sudoku.count_solutions(puzzle.grid) == 1


@pytest.mark.slow
def test_generator_digs_below_where_random_digging_stops():
    # 21 givens: digging stops above on almost every grid; the "-2 +1" moves go on from there.
    puzzle, solution = sudoku.make_puzzle(21, np.random.default_rng(4), max_attempts=50)
    assert (puzzle != 0).sum() == 21 and sudoku.count_solutions(puzzle) == 1
    assert np.all((puzzle == 0) | (puzzle == solution))


def test_generator_is_seeded():
    first = sudoku.generate(2, np.random.default_rng(7), givens=35)
    second = sudoku.generate(2, np.random.default_rng(7), givens=35)
    for (a, _), (b, _) in zip(first, second):
        np.testing.assert_array_equal(a.grid, b.grid)


def test_generate_batch():
    inputs, labels = sudoku.generate_batch(4, np.random.default_rng(3), givens=(30, 35))
    assert inputs.shape == labels.shape == (4, 81) and inputs.dtype == labels.dtype == np.int32
    assert labels.min() >= 2 and inputs.min() >= 1
    assert np.all((inputs == sudoku.BLANK_TOKEN) | (inputs == labels))
    for x, y in zip(inputs, labels):
        assert sudoku.check(sudoku.SudokuPuzzle(sudoku.decode(x)), sudoku.decode(y))[0]


@pytest.mark.parametrize("givens", [16, 82, (40, 30)])
def test_generator_rejects_bad_givens(givens):
    with raises_one_line("givens must lie in"):
        sudoku.generate(1, np.random.default_rng(0), givens=givens)


def test_generator_gives_up_with_a_clear_error():
    with raises_one_line("no unique sudoku with 17 givens after 2 random grids"):
        sudoku.make_puzzle(17, np.random.default_rng(0), max_attempts=2)


# --- augmentation ----------------------------------------------------------------------------------------------


def test_augmentation_is_label_consistent_and_invertible():
    rng = np.random.default_rng(4)
    inputs = np.stack([sudoku.encode(sudoku.SudokuPuzzle(grid_of(p))) for p in (PUZZLE, SECOND)] * 8)
    labels = np.stack([sudoku.encode_answer(sudoku.solve(grid_of(p))) for p in (PUZZLE, SECOND)] * 8)
    new_inputs, new_labels, transforms = sudoku.augment(inputs, labels, rng)
    assert new_inputs.dtype == new_labels.dtype == np.int32 and new_inputs.shape == inputs.shape
    assert not np.array_equal(new_inputs, inputs)
    for x, y, old_x in zip(new_inputs, new_labels, inputs):
        puzzle = sudoku.SudokuPuzzle(sudoku.decode(x))
        assert sudoku.check(puzzle, sudoku.decode(y)) == (True, "solved")
        assert (x == sudoku.BLANK_TOKEN).sum() == (old_x == sudoku.BLANK_TOKEN).sum()
    np.testing.assert_array_equal(sudoku.invert_augmentation(new_inputs, transforms), inputs)
    np.testing.assert_array_equal(sudoku.invert_augmentation(new_labels, transforms), labels)
    # The first new row comes from one old column when transposed, from one old row otherwise; both occur.
    transposed = [len(set(t.cell_order[:9] % 9)) == 1 for t in transforms]
    assert all(len(set(t.cell_order[:9] // 9)) == 1 for t, flag in zip(transforms, transposed) if not flag)
    assert any(transposed) and not all(transposed)


def test_augment_without_labels():
    inputs = sudoku.encode(sudoku.SudokuPuzzle(grid_of(PUZZLE)))[None]
    new_inputs, labels, [transform] = sudoku.augment(inputs, None, np.random.default_rng(0))
    assert labels is None
    np.testing.assert_array_equal(sudoku.apply_transform(inputs[0], transform), new_inputs[0])
    np.testing.assert_array_equal(sudoku.invert_transform(new_inputs[0], transform), inputs[0])


# --- the exact solver judges puzzles, never answers ---------------------------------------------------------------

NO_SOLUTION = "012345678" + "0" * 18 + "900000000" + "0" * 45  # row 1 needs its 9 in column 1, which holds one
ONE_BOX_GIVEN = "123000000456000000789000000" + "0" * 54  # only the first box: countless solutions
INKALA = "800000000003600000070090200050007000000045700000100030001000068008500010090000400"  # hard, unique


def test_the_exact_check_tells_puzzles_without_or_with_several_solutions():
    puzzle = sudoku.SudokuPuzzle(grid_of(NO_SOLUTION))
    sudoku.validate(puzzle)  # no two givens clash
    with raises_one_line("this puzzle has no solution"):
        sudoku.TASK.exact_check(puzzle)
    note = sudoku.TASK.exact_check(sudoku.SudokuPuzzle(grid_of(ONE_BOX_GIVEN)))
    assert note == "this puzzle has 2+ solutions; any valid completion counts"
    assert sudoku.TASK.exact_check(sudoku.SudokuPuzzle(grid_of(PUZZLE))) is None
    # a puzzle the short check cannot settle is left unjudged (and the solver is not asked for an answer)
    assert sudoku._run_search(grid_of(INKALA), 2, budget=sudoku.CHECK_BUDGET, compiled=False)[0] == -1
    assert sudoku.TASK.exact_check(sudoku.SudokuPuzzle(grid_of(INKALA))) is None
    assert sudoku.count_solutions(grid_of(INKALA)) == 1


# --- drawing ------------------------------------------------------------------------------------------------------


def test_an_answer_is_drawn_beside_its_puzzle_so_givens_stand_apart_without_colours():
    from hrm_mlx import tasks

    [puzzle] = sudoku.parse(PUZZLE)
    [picture] = tasks.get("sudoku").pictures(puzzle, grid_of(SOLUTION))
    assert picture.caption.split() == ["puzzle", "answer"]
    digit_rows = [row for row in picture.rows if any(text.strip().isdigit() for text, _ in row)]
    assert len(digit_rows) == 9
    for r, row in enumerate(digit_rows):
        text = "".join(cell for cell, _ in row)
        left, right = text[:len(text) // 2], text[len(text) // 2:]
        assert "".join(ch for ch in left if ch in "123456789.") == PUZZLE[9 * r:9 * r + 9].replace("0", ".")
        assert "".join(ch for ch in right if ch.isdigit()) == SOLUTION[9 * r:9 * r + 9]
        # on a terminal the answer's givens are bold and the model's digits cyan
        styles = [style for cell, style in row if cell.strip().isdigit()][-9:]
        assert styles == ["bold" if PUZZLE[9 * r + c] != "0" else "cyan" for c in range(9)]
