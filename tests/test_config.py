"""Typed settings (hrm_mlx.config): values checked against field types once, one-line errors naming the key, dotted
overrides, and the help listing of every setting."""

from dataclasses import dataclass
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from hrm_mlx.cli.main import _register, app
from hrm_mlx.config import Settings, override, parse_assignment, setting
from user_errors import raises_one_line


@dataclass
class Inner(Settings):
    kind: ClassVar[str] = "inner setting"
    depth: int = setting(2, "how deep", minimum=1)


@dataclass
class Outer(Settings):
    name: str = setting(help="required")
    size: int | list[int] = setting(3, "a side or [low, high]")
    rate: float = setting(0.5, "a share", minimum=0)
    mode: str = setting("a", "a letter", choices=("a", "b"))
    limit: int | None = setting(None, "optional")
    inner: Inner = setting(Inner(), "nested")

    def validate(self) -> None:
        if self.name == "bad":
            raise ValueError("validate runs")


def test_values_are_checked_once_with_one_line_errors():
    outer = Outer.from_dict({"name": "x", "size": [1, 2], "inner": {"depth": 4}}, "cfg.")
    assert outer.size == [1, 2] and outer.inner == Inner(4) and outer.rate == 0.5
    assert outer.to_dict() == {"name": "x", "size": [1, 2], "rate": 0.5, "mode": "a", "limit": None,
                               "inner": {"depth": 4}}
    cases = [({"size": "3"}, "cfg.size must be a non-negative integer or a list of non-negative integers, not '3'"),
             ({"rate": -1}, "cfg.rate must be a non-negative number, not -1"),
             ({"rate": True}, "cfg.rate must be a non-negative number"),
             ({"mode": "c"}, "cfg.mode must be one of 'a', 'b', not 'c'"),
             ({"limit": 1.5}, "cfg.limit must be a non-negative integer or null"),
             ({"inner": {"depth": 0}}, "cfg.inner.depth must be a positive integer, not 0"),
             ({"inner": {"width": 1}}, "unknown config key 'cfg.inner.width'"),
             ({"nope": 1}, "unknown config key 'cfg.nope'")]
    for change, message in cases:
        with raises_one_line(message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            Outer.from_dict({"name": "x", **change}, "cfg.")
    with raises_one_line("missing key name"):
        Outer.from_dict({})
    with raises_one_line("unknown inner setting 'width'"):
        Inner.from_dict({"width": 1})
    assert Outer.from_dict({"name": "x", "extra": 1}, strict=False).name == "x"  # ignored when not strict
    with pytest.raises(ValueError, match="validate runs"):
        Outer.from_dict({"name": "bad"})
    Outer.check_partial({"size": 4})  # only what is given
    with raises_one_line("cfg.size must be"):
        Outer.check_partial({"size": None}, "cfg.")


def test_dotted_overrides_and_the_listing():
    tree = {"train": {"lr": 1}}
    override(tree, *parse_assignment("train.data.size=[5,7]"))
    override(tree, *parse_assignment("train.name=plain text"))
    assert tree == {"train": {"lr": 1, "data": {"size": [5, 7]}, "name": "plain text"}}
    with raises_one_line("a setting is KEY=VALUE"):
        parse_assignment("train.lr")
    assert ("inner.depth", "2", "how deep") in Outer.describe() and ("name", "(required)", "required") in \
        Outer.describe()


def test_the_train_command_lists_every_setting():
    _register()
    result = CliRunner().invoke(app, ["train", "--list-settings", "--task", "maze"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for key in ("train.lr", "train.init_from", "train.data.canvas", "train.data.loop_fraction"):
        assert key in result.output
    assert "[low, high]" in result.output and "train.data.givens" not in result.output  # the maze's data only
    everything = CliRunner().invoke(app, ["train", "--list-settings"], env={"COLUMNS": "200"}).output
    assert "(mini-sudoku)" in everything and "(arc)" in everything
