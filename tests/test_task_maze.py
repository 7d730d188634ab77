import json

import numpy as np
import pytest

from hrm_mlx.tasks import maze
from user_errors import raises_one_line

# Open rooms with loops: S (1,1) to G (5,5) takes 8 steps along several different shortest paths.
LOOPY = ["#######", "#S    #", "# ### #", "#     #", "# ### #", "#    G#", "#######"]
TOP_RIGHT = ["#######", "#Soooo#", "# ###o#", "#    o#", "# ###o#", "#    G#", "#######"]
LEFT_BOTTOM = ["#######", "#S    #", "#o### #", "#o    #", "#o### #", "#ooooG#", "#######"]
DETOUR = ["#######", "#Soooo#", "# ###o#", "#ooooo#", "#o### #", "#ooooG#", "#######"]
# No right border: editors strip the trailing spaces of rows 1 and 2.
RAGGED = ["#####", "#S", "# # ", "#  G#", "#####"]


def maze_of(rows: list[str]) -> maze.Maze:
    [parsed] = maze.parse("\n".join(rows))
    return parsed


def codes_of(rows: list[str]) -> np.ndarray:
    return np.array([[maze.SYMBOLS.index(ch) + 1 for ch in row.ljust(len(rows))] for row in rows], np.uint8)

# --- parsing ---------------------------------------------------------------------------------------------------


def test_parse_text_grid_with_official_codes():
    parsed = maze_of(LOOPY)
    assert parsed.grid.dtype == np.uint8 and parsed.grid.shape == (7, 7)
    assert (parsed.grid[0, 0], parsed.grid[1, 1], parsed.grid[1, 2], parsed.grid[5, 5]) == (
        maze.WALL,
        maze.START,
        maze.OPEN,
        maze.GOAL,
    )
    assert parsed.solution is None
    assert (maze.NAME, maze.VOCAB_SIZE, maze.SEQ_LEN, maze.CANVAS) == ("maze", 6, 900, 30)
    assert [maze.WALL, maze.OPEN, maze.START, maze.GOAL, maze.PATH] == [1, 2, 3, 4, 5]


def test_parse_pads_ragged_lines_with_open_cells():
    parsed = maze_of(RAGGED)
    np.testing.assert_array_equal(parsed.grid, codes_of(RAGGED))
    assert parsed.grid[1, 4] == maze.OPEN


def test_parse_text_with_path_keeps_the_answer():
    parsed = maze_of(TOP_RIGHT)
    np.testing.assert_array_equal(parsed.grid, codes_of(LOOPY))
    np.testing.assert_array_equal(parsed.solution, codes_of(TOP_RIGHT))


def test_parse_many_mazes_separated_by_blank_lines():
    text = "\n".join(LOOPY) + "\n\n  \n" + "\n".join(RAGGED) + "\n\n" + "".join(LOOPY) + "\n"
    parsed = maze.parse(text)
    assert [m.grid.shape for m in parsed] == [(7, 7), (5, 5), (7, 7)]
    np.testing.assert_array_equal(parsed[2].grid, codes_of(LOOPY))


def test_parse_flat_strings_one_per_line():
    flat = "".join(LOOPY)
    parsed = maze.parse(f"{flat}\n{''.join(TOP_RIGHT)}\n{''.join(RAGGED[:1] + ['#S   ', '# #  '] + RAGGED[3:])}")
    assert len(parsed) == 3
    np.testing.assert_array_equal(parsed[0].grid, codes_of(LOOPY))
    np.testing.assert_array_equal(parsed[1].solution, codes_of(TOP_RIGHT))
    np.testing.assert_array_equal(parsed[2].grid, codes_of(RAGGED))


def test_parse_json_forms():
    forms = [
        json.dumps({"task": "maze", "grid": LOOPY}),
        json.dumps({"grid": "".join(LOOPY)}),
        json.dumps({"maze": "\n".join(LOOPY)}),
        json.dumps(LOOPY),
        json.dumps([{"task": "maze", "grid": LOOPY}]),
    ]
    for text in forms:
        [parsed] = maze.parse(text)
        np.testing.assert_array_equal(parsed.grid, codes_of(LOOPY), err_msg=text)


def test_parse_json_lists_jsonl_and_answers():
    listed = json.dumps([{"grid": LOOPY, "solution": TOP_RIGHT}, {"grid": "".join(LOOPY)}, TOP_RIGHT])
    parsed = maze.parse(listed)
    assert len(parsed) == 3
    np.testing.assert_array_equal(parsed[0].solution, codes_of(TOP_RIGHT))
    assert parsed[1].solution is None
    np.testing.assert_array_equal(parsed[2].grid, codes_of(LOOPY))
    np.testing.assert_array_equal(parsed[2].solution, codes_of(TOP_RIGHT))

    jsonl = json.dumps({"task": "maze", "grid": LOOPY}) + "\n" + json.dumps({"grid": "".join(TOP_RIGHT)}) + "\n"
    parsed = maze.parse(jsonl)
    assert len(parsed) == 2 and parsed[1].solution is not None


def test_parse_dataset_csv():
    text = (
        "source,question,answer,rating\n"
        f"gen,{''.join(LOOPY)},{''.join(LEFT_BOTTOM)},8\n"
        f'gen,"{"".join(LOOPY)}",,8\n'
    )
    first, second = maze.parse(text)
    np.testing.assert_array_equal(first.grid, codes_of(LOOPY))
    np.testing.assert_array_equal(first.solution, codes_of(LEFT_BOTTOM))
    assert second.solution is None


def test_to_text_round_trips_through_parse():
    parsed = maze_of(LOOPY)
    assert maze.to_text(parsed).split("\n") == LOOPY
    assert maze.to_text(codes_of(TOP_RIGHT), compact=True) == "".join(TOP_RIGHT)
    for compact in (False, True):
        [back] = maze.parse(maze.to_text(parsed, compact=compact))
        np.testing.assert_array_equal(back.grid, parsed.grid)
    assert maze.to_text(np.array([[0, 9], [1, 2]])) == "??\n# "


def test_looks_like():
    assert maze.looks_like("\n".join(LOOPY))
    assert maze.looks_like("".join(LOOPY))
    assert maze.looks_like(json.dumps({"task": "maze", "grid": LOOPY}))
    assert not maze.looks_like(json.dumps({"task": "sudoku", "grid": LOOPY}))
    assert not maze.looks_like("53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79")
    assert not maze.looks_like(json.dumps({"train": [], "test": []}))
    assert not maze.looks_like("")


# --- bad inputs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty input"),
        ("\n \n", "empty input"),
        ("#####\n#S G#\n#X  #\n#####\n#####", "line 3, column 2: unknown maze symbol 'X'"),
        ("#####\n#S\tG#\n#####", "line 2 holds a tab; a maze cell is one character"),
        ("#S  G#####", "line 1: 10 characters is not a square maze"),
        ('{"grid": ["###", "#S#"', "malformed JSON"),
        ('{"grid": "#S G"}\n{"grid": nope}', "malformed JSON on line 2"),
        (json.dumps({"task": "sudoku", "grid": LOOPY}), "task is 'sudoku'"),
        (json.dumps({"cells": LOOPY}), "no maze grid"),
        (json.dumps({"grid": 5}), "list of row strings"),
        (json.dumps({"grid": ["#S#", "#?#", "#G#"]}), "row 2, column 2: unknown maze symbol '?'"),
        ("question\n" + "#S G#", "CSV line 2: 5 characters is not a square maze"),
    ],
)
def test_bad_inputs_raise_one_line_errors(text, match):
    with raises_one_line(match):
        maze.parse(text)


@pytest.mark.parametrize(
    "rows, match",
    [
        (["#####", "#   #", "# # #", "#  G#", "#####"], "0 start 'S' cells"),
        (["#####", "#S S#", "# # #", "#  G#", "#####"], "2 start 'S' cells"),
        (["#####", "#S  #", "# # #", "#   #", "#####"], "0 goal 'G' cells"),
        (["#####", "#S# #", "### #", "#  G#", "#####"], "cannot be reached"),
    ],
)
def test_validate_rejects_unusable_mazes(rows, match):
    with raises_one_line(match):
        maze.validate(maze_of(rows))


def test_validate_rejects_bad_sizes_symbols_and_wrong_answers():
    maze.validate(maze_of(LOOPY))
    big = np.full((31, 31), maze.OPEN, np.uint8)
    big[0, 0], big[30, 30] = maze.START, maze.GOAL
    with raises_one_line("31x31; sizes from 2x2 to 30x30"):
        maze.validate(maze.Maze(big))
    maze.validate(maze.Maze(big), canvas=31)
    with raises_one_line("1x4; sizes from 2x2 to 30x30"):
        maze.validate(maze.Maze(np.full((1, 4), maze.OPEN)))
    with raises_one_line("contains 'o'"):
        maze.validate(maze.Maze(codes_of(TOP_RIGHT)))
    with raises_one_line("code 9"):
        maze.validate(maze.Maze(np.where(codes_of(LOOPY) == maze.WALL, 9, codes_of(LOOPY))))
    with raises_one_line("answer given with the maze is wrong"):
        maze.validate(maze.Maze(codes_of(LOOPY), solution=codes_of(DETOUR)))
    with raises_one_line("2-D array"):
        maze.Maze(np.zeros(9))


# --- encoding --------------------------------------------------------------------------------------------------


def test_encoding_places_the_maze_top_left_with_pad_around():
    parsed = maze_of(LOOPY)
    tokens = maze.encode(parsed)
    assert tokens.dtype == np.int32 and tokens.shape == (maze.SEQ_LEN,)
    board = tokens.reshape(30, 30)
    np.testing.assert_array_equal(board[:7, :7], codes_of(LOOPY))
    assert (board[7:] == maze.PAD).all() and (board[:, 7:] == maze.PAD).all()
    labels = maze.encode_answer(codes_of(TOP_RIGHT), canvas=10)
    assert labels.shape == (100,) and (labels.reshape(10, 10)[:7, :7] == codes_of(TOP_RIGHT)).all()
    assert (labels.reshape(10, 10)[7:] == 0).all()  # 0 = official ignore label


@pytest.mark.parametrize(
    "text",
    ["\n".join(LOOPY), "\n".join(RAGGED), "".join(LOOPY), json.dumps({"grid": LOOPY}), "question\n" + "".join(LOOPY)],
)
def test_encode_decode_identity_for_every_format(text):
    [parsed] = maze.parse(text)
    for canvas in (parsed.grid.shape[0], 30):
        tokens = maze.encode(parsed, canvas=canvas)
        np.testing.assert_array_equal(maze.decode(tokens, parsed), parsed.grid)
        np.testing.assert_array_equal(maze.decode(tokens), parsed.grid)  # size found from the pad


def test_decode_of_a_full_canvas_and_of_a_bad_length():
    full = maze.generate(1, np.random.default_rng(0), size=30)[0][1]
    np.testing.assert_array_equal(maze.decode(maze.encode_answer(full)), full)
    with raises_one_line("do not form a square canvas"):
        maze.decode(np.zeros(10))


# --- checker ---------------------------------------------------------------------------------------------------


def test_check_accepts_any_shortest_path():
    parsed = maze_of(LOOPY)
    assert maze.shortest_path_length(parsed) == 8
    assert maze.check(parsed, maze.shortest_path(parsed)) == (True, "solved")
    assert maze.check(parsed, codes_of(TOP_RIGHT)) == (True, "solved")
    assert maze.check(parsed, codes_of(LEFT_BOTTOM)) == (True, "solved")


def test_check_accepts_start_next_to_goal():
    adjacent = maze_of(["####", "#SG#", "#  #", "####"])
    assert maze.shortest_path_length(adjacent) == 1
    assert maze.check(adjacent, adjacent.grid) == (True, "solved")
    with_extra = adjacent.grid.copy()
    with_extra[2, 1] = maze.PATH
    assert maze.check(adjacent, with_extra) == (False, "1 'o' cells are not on the path from S to G")


def test_check_rejects_wrong_answers():
    parsed = maze_of(LOOPY)
    right = codes_of(TOP_RIGHT)

    broken = right.copy()
    broken[1, 4] = maze.OPEN
    assert maze.check(parsed, broken) == (False, "the 'o' cells do not connect S to G")

    assert maze.check(parsed, codes_of(DETOUR)) == (False, "the marked path takes 16 steps; the shortest takes 8")

    extra = right.copy()
    extra[3, 2] = maze.PATH
    assert maze.check(parsed, extra) == (False, "1 'o' cells are not on the path from S to G")

    on_wall = right.copy()
    on_wall[2, 2] = maze.PATH
    assert maze.check(parsed, on_wall) == (False, "row 3, column 3 should stay '#'")

    moved_start = right.copy()
    moved_start[1, 1] = maze.PATH
    assert maze.check(parsed, moved_start)[1] == "row 2, column 2 should stay 'S'"

    pad_inside = right.copy()
    pad_inside[3, 1] = maze.PAD
    assert maze.check(parsed, pad_inside)[1] == "row 4, column 2 holds '?'; open cells become ' ' or 'o'"

    no_path = parsed.grid.copy()
    assert maze.check(parsed, no_path) == (False, "the 'o' cells do not connect S to G")
    assert not maze.check(parsed, right[:6, :6])[0]


# --- generator -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [5, 6, 7, 8, 13, 20, 29, 30])
def test_generated_mazes_are_valid_with_shortest_path_labels(size):
    for generated, solution in maze.generate(3, np.random.default_rng(size), size=size):
        assert generated.grid.shape == (size, size)
        assert (generated.grid == maze.START).sum() == 1 and (generated.grid == maze.GOAL).sum() == 1
        maze.validate(generated)
        assert maze.check(generated, solution) == (True, "solved")
        assert (solution == maze.PATH).sum() == maze.shortest_path_length(generated) - 1
        np.testing.assert_array_equal(generated.solution, solution)
        assert (generated.grid[0] == maze.WALL).all() and (generated.grid[:, -1] == maze.WALL).all()


def test_generator_min_path_loops_and_seeding():
    rng = np.random.default_rng(5)
    hard = maze.generate(5, rng, size=30, min_path=110)
    assert all(maze.shortest_path_length(m) >= 110 for m, _ in hard)

    perfect, _ = maze.make_maze(15, np.random.default_rng(6), loop_fraction=0.0)
    loopy, _ = maze.make_maze(15, np.random.default_rng(6), loop_fraction=0.5)
    # A perfect maze on a 7x7 room lattice has 48 corridors between its 49 rooms; loops add more open cells.
    assert (perfect.grid != maze.WALL).sum() == 49 + 48
    assert (loopy.grid != maze.WALL).sum() > 49 + 48

    first = maze.generate(2, np.random.default_rng(9), size=(5, 12))
    second = maze.generate(2, np.random.default_rng(9), size=(5, 12))
    for (a, _), (b, _) in zip(first, second):
        np.testing.assert_array_equal(a.grid, b.grid)


def test_generator_far_goals_and_loop_ranges():
    far = maze.generate(20, np.random.default_rng(3), size=15, far_goal=1.0)
    for generated, _ in far:  # G is a cell farthest from S
        steps = maze._distances(generated.grid, maze._position(generated.grid, maze.START))
        assert maze.shortest_path_length(generated) == steps.max()
    near = maze.generate(20, np.random.default_rng(3), size=15)
    assert np.mean([maze.shortest_path_length(m) for m, _ in far]) > np.mean(
        [maze.shortest_path_length(m) for m, _ in near])
    ranged = maze.generate(30, np.random.default_rng(4), size=15, loop_fraction=(0.0, 0.5))
    open_cells = {int((m.grid != maze.WALL).sum()) for m, _ in ranged}
    assert min(open_cells) < 110 < max(open_cells)  # perfect-ish and loopy mazes in one set
    with raises_one_line("far_goal must lie in 0..1"):
        maze.generate(1, np.random.default_rng(0), size=9, far_goal=1.5)


def test_generate_batch_on_a_canvas():
    inputs, labels = maze.generate_batch(6, np.random.default_rng(2), size=(5, 12), canvas=12)
    assert inputs.shape == labels.shape == (6, 144) and inputs.dtype == labels.dtype == np.int32
    assert ((inputs == maze.PAD) == (labels == maze.PAD)).all()
    for x, y in zip(inputs, labels):
        puzzle = maze.Maze(maze.decode(x))
        assert maze.check(puzzle, maze.decode(y, puzzle)) == (True, "solved")


@pytest.mark.parametrize("size", [4, 31, (12, 8)])
def test_generator_rejects_bad_sizes(size):
    with raises_one_line("maze size must lie in 5..30"):
        maze.generate(1, np.random.default_rng(0), size=size)


def test_generator_gives_up_on_impossible_min_path():
    with raises_one_line("no 5x5 maze with a path of 50\\+ steps"):
        maze.make_maze(5, np.random.default_rng(0), min_path=50, max_attempts=3)
    with raises_one_line("loop_fraction"):
        maze.make_maze(5, np.random.default_rng(0), loop_fraction=2.0)


# --- augmentation ----------------------------------------------------------------------------------------------


def test_augmentation_is_label_consistent_and_invertible_for_mixed_sizes():
    rng = np.random.default_rng(3)
    inputs, labels = maze.generate_batch(12, rng, size=(5, 12), canvas=16)
    loopy = maze_of(LOOPY)
    inputs = np.concatenate([inputs, np.stack([maze.encode(loopy, canvas=16)] * 8)])
    labels = np.concatenate([labels, np.stack([maze.encode_answer(codes_of(TOP_RIGHT), canvas=16)] * 8)])
    new_inputs, new_labels, transforms = maze.augment(inputs, labels, rng)
    assert new_inputs.dtype == new_labels.dtype == np.int32
    assert len({t.dihedral for t in transforms}) > 4
    # The maze stays at the top-left: pad cells are exactly where they were.
    np.testing.assert_array_equal(new_inputs == maze.PAD, inputs == maze.PAD)
    np.testing.assert_array_equal(new_labels == maze.PAD, labels == maze.PAD)
    for x, y, transform in zip(new_inputs, new_labels, transforms):
        puzzle = maze.Maze(maze.decode(x))
        assert puzzle.grid.shape == (transform.size, transform.size)
        maze.validate(puzzle)
        assert maze.check(puzzle, maze.decode(y, puzzle)) == (True, "solved")
    np.testing.assert_array_equal(maze.invert_augmentation(new_inputs, transforms), inputs)
    np.testing.assert_array_equal(maze.invert_augmentation(new_labels, transforms), labels)


def test_augment_without_labels_and_single_transforms():
    tokens = maze.encode(maze_of(LOOPY))
    new_inputs, labels, [transform] = maze.augment(tokens[None], None, np.random.default_rng(1))
    assert labels is None and transform.size == 7
    np.testing.assert_array_equal(maze.apply_transform(tokens, transform), new_inputs[0])
    np.testing.assert_array_equal(maze.invert_transform(new_inputs[0], transform), tokens)
    flipped = maze.apply_transform(tokens, maze.MazeTransform(dihedral=4, size=7))
    assert maze.to_text(maze.decode(flipped)).split("\n")[1] == "#    S#"


# --- mazes as people write them --------------------------------------------------------------------------------


def test_a_rectangular_maze_is_solved_on_a_square_of_walls():
    rows = ["#########", "#S      #", "# ##### #", "#      G#", "#########"]
    parsed = maze_of(rows)
    assert parsed.grid.shape == (5, 9) and maze.side(parsed) == 9
    maze.validate(parsed, canvas=9)
    board = maze.encode(parsed, canvas=10).reshape(10, 10)
    np.testing.assert_array_equal(board[:5, :9], parsed.grid)
    assert (board[5:9, :9] == maze.WALL).all() and (board[9] == maze.PAD).all() and (board[:, 9] == maze.PAD).all()
    answer = maze.shortest_path(parsed)
    assert maze.decode(maze.encode_answer(np.pad(answer, ((0, 4), (0, 0)), constant_values=maze.WALL), 10),
                       parsed).shape == (5, 9)
    assert maze.check(parsed, answer) == (True, "solved")
    with raises_one_line("5x9; sizes from 2x2 to 8x8"):
        maze.validate(parsed, canvas=8)


def test_a_row_of_open_cells_in_a_maze_without_a_border_is_a_row():
    rows = ["S # # # #", "         ", "# # # # #", "         ", "# # # # G"]
    [parsed] = maze.parse("\n".join(rows) + "\n")
    assert parsed.grid.shape == (5, 9) and (parsed.grid[1] == maze.OPEN).all()
    maze.validate(parsed)
    # an empty line, or spaces of another width, still separates mazes
    assert len(maze.parse("\n".join(LOOPY) + "\n\n" + "\n".join(LOOPY))) == 2
    assert len(maze.parse("\n".join(LOOPY) + "\n   \n" + "\n".join(LOOPY))) == 2


def test_flat_lines_are_told_from_grid_rows_by_their_start_and_goal():
    grid = ["#########", "#S     G#", "# ##### #", "#       #", "#########"]  # five rows of 9: one 5x9 maze
    assert [m.grid.shape for m in maze.parse("\n".join(grid))] == [(5, 9)]
    flat = ["###S G###", "###G S###"]  # each line has its S and G: two 3x3 mazes
    assert [m.grid.shape for m in maze.parse("\n".join(flat))] == [(3, 3), (3, 3)]


def test_a_tab_is_named_and_csv_rows_keep_their_source():
    with raises_one_line("line 2 holds a tab; a maze cell is one character: write open cells as spaces"):
        maze.parse("#####\n\t#S G#\n#####")
    flat = "".join(LOOPY)
    parsed = maze.parse(f"source,question\nhard-{1},{flat}\n,{flat}\n")
    assert [m.name for m in parsed] == ["hard-1", None]
    assert maze.parse(json.dumps([{"grid": LOOPY, "id": "m7"}]))[0].name == "m7"
