"""Model cards (README.md with the Hub's YAML header) on every model folder we write, and ``hrm-mlx upload``
against a stand-in Hub client that commits into a local folder (no network here)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.errors import LocalTokenNotFoundError

import hrm_fixtures as fx
from hrm_mlx import io, model_card, publish
from hrm_mlx.cli import main as cli_main
from hrm_mlx.errors import HrmMlxError
from user_errors import assert_one_line_error

RUNS = Path(__file__).parent / "fixtures" / "trm_runs"
COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def card_of(folder: Path) -> ModelCard:
    return ModelCard((folder / "README.md").read_text())  # what the Hub parses


def test_saved_folder_has_a_card_with_hub_metadata(tmp_path):
    config = {"family": "hrm", **fx.config("rope"), "task": {"name": "maze", "canvas": 4}}  # 16 tokens, as the model
    folder = io.save(fx.build_model("rope"), config, tmp_path / "m")
    card = card_of(folder)
    assert card.data.library_name == "mlx" and card.data.license == "apache-2.0"
    assert card.data.tags == ["mlx", "hrm-mlx", "hrm", "maze"] and card.data.base_model is None
    assert f"--model {folder}" in card.text


def test_accuracy_on_two_data_sets_stays_two_results():
    """The Hub merges results by task, dataset type and config: the shipped cards report two data sets."""
    accuracy = [model_card.Accuracy(0.97, "solved", "Sudokus with 25-45 givens", 320),
                model_card.Accuracy(0.87, "solved", "Sudokus with 21-24 givens", 104)]
    config = {"family": "trm", "task": {"name": "sudoku"}}
    card = ModelCard(model_card.render(model_card.metadata(config, accuracy=accuracy), "text"))
    results = {(r.dataset_name, r.metric_value) for r in card.data.eval_results}
    assert results == {("Sudokus with 25-45 givens", 0.97), ("Sudokus with 21-24 givens", 0.87)}
    assert len(card.data.to_dict()["model-index"][0]["results"]) == 2


def test_converted_hub_repo_card_records_its_source(hub, tmp_path):
    repo = "Sanjin2024/TinyRecursiveModels-Sudoku-Extreme-att"
    snapshot = hub / f"models--{repo.replace('/', '--')}" / "snapshots" / COMMIT
    (snapshot.parent.parent / "refs").mkdir(parents=True)
    (snapshot.parent.parent / "refs" / "main").write_text(COMMIT)
    shutil.copytree(RUNS / "sudoku-att", snapshot)
    (snapshot / "README.md").write_text("---\nlicense: apache-2.0\n---\n# their card\n")
    io.convert(repo, tmp_path / "out")
    card = card_of(tmp_path / "out")
    assert card.data.base_model == repo and card.data.license == "apache-2.0"  # the source card's license
    assert card.data.tags == ["mlx", "hrm-mlx", "trm", "sudoku"]
    run = "checkpoints/Sudoku-extreme-1k-aug-1000-ACT-torch/pretrain_att_sudoku/step_1302"
    assert f"revision `{COMMIT}`" in card.text and f"file `{run}`" in card.text
    assert "task sudoku from data_path" in card.text  # what the converter inferred


def test_converted_local_checkpoint_card(tmp_path):
    io.convert(RUNS / "maze", tmp_path / "out", seq_len=121)
    card = card_of(tmp_path / "out")
    assert card.data.license == "unknown" and card.data.base_model is None  # nothing says it
    assert f"from `{(RUNS / 'maze').absolute()}`" in card.text and "official TRM trainer checkpoint" in card.text
    io.convert(tmp_path / "out", tmp_path / "half", dtype="float16")  # a re-saved folder keeps its card
    assert (tmp_path / "half" / "README.md").read_text() == (tmp_path / "out" / "README.md").read_text()


class LocalHub:
    """Stands in for huggingface_hub.HfApi: create_repo and create_commit write into a local folder."""

    def __init__(self, root: Path):
        self.root, self.calls = root, []

    def create_repo(self, repo_id, repo_type, private, exist_ok):
        self.calls.append(("create_repo", repo_id, private))
        (self.root / repo_id).mkdir(parents=True, exist_ok=exist_ok)

    def create_commit(self, repo_id, repo_type, operations, commit_message):
        self.calls.append(("create_commit", repo_id, commit_message))
        for op in operations:
            target = self.root / repo_id / op.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            source = op.path_or_fileobj
            target.write_bytes(source if isinstance(source, bytes) else Path(source).read_bytes())
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/1"})()


def test_upload_commits_the_folder_with_a_card_naming_the_repo(tmp_path, monkeypatch):
    io.convert(RUNS / "sudoku-mlp", tmp_path / "model")
    (tmp_path / "model" / "training").mkdir()
    (tmp_path / "model" / "training" / "curves.png").write_bytes(b"png")
    local = LocalHub(tmp_path / "remote")
    monkeypatch.setattr(publish, "_api", lambda: local)
    url = publish.upload(tmp_path / "model", "me/trm-sudoku", private=True)
    assert url.endswith("/commit/1") and [c[0] for c in local.calls] == ["create_repo", "create_commit"]
    uploaded = tmp_path / "remote" / "me" / "trm-sudoku"
    assert sorted(p.relative_to(uploaded).as_posix() for p in uploaded.rglob("*") if p.is_file()) == [
        "README.md", "config.json", "model.safetensors", "training/curves.png"]
    card, before = card_of(uploaded), card_of(tmp_path / "model")
    assert "--model me/trm-sudoku" in card.text and 'hrm_mlx.load("me/trm-sudoku")' in card.text
    assert card.data.to_dict() == before.data.to_dict() and "--model me/" not in before.text  # folder untouched
    model, config = io.load(uploaded)  # what the Hub now holds loads as a model
    assert config["mlp_t"]


@pytest.mark.slow
def test_upload_command_and_its_errors(tmp_path, capsys, monkeypatch):
    io.convert(RUNS / "sudoku-att", tmp_path / "model")
    local = LocalHub(tmp_path / "remote")
    monkeypatch.setattr(publish, "_api", lambda: local)
    cli_main._register()
    monkeypatch.setattr(cli_main, "_register", lambda *argv: None)

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["hrm-mlx", "upload", *map(str, args)])
        with pytest.raises(SystemExit) as exit_info:
            cli_main.main()
        return exit_info.value.code, capsys.readouterr()

    code, out = run(tmp_path / "model", "me/m", "--message", "first")
    assert code == 0 and "uploaded" in out.out and local.calls[-1] == ("create_commit", "me/m", "first")
    code, out = run(tmp_path / "model", "me/m", "--json", "--out", tmp_path / "u.json")
    printed = json.loads(out.out)
    assert code == 0 and printed["repo"] == "me/m" and printed["url"].startswith("https://huggingface.co/me/m")
    assert json.loads((tmp_path / "u.json").read_text()) == printed
    for args, message in (((tmp_path / "model", "not a repo"), "not a Hugging Face repo id"),
                          ((tmp_path / "model", "noowner"), "name the owner too"),
                          ((tmp_path / "nothing", "me/m"), "not a model folder")):
        code, out = run(*args)
        assert_one_line_error(code, out.err, message)

    def no_token(**_):
        raise LocalTokenNotFoundError("Token is required")
    local.create_repo = no_token
    code, out = run(tmp_path / "model", "me/m")
    assert_one_line_error(code, out.err, "hf auth login")
