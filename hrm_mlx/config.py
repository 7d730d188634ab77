"""Typed settings: dataclasses whose fields carry their help text and bounds.

A settings class (``Settings`` subclass, a dataclass) is read from the JSON-like dict of a recipe, a run's
config.json or a model's config.json with ``from_dict``, which checks every key and value against the field
types once and raises a one-line HrmMlxError naming the key; ``to_dict`` writes it back as plain JSON values.
``override`` applies a dotted ``--set`` key to such a dict, so every setting can be changed the same way;
``describe`` lists the settings with their defaults and help.

Field types understood: int, float, bool, str, None, lists of those, dict, nested Settings classes and unions
of them (``int | list[int]``). Integers are non-negative unless a field says otherwise; floats are finite.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
import typing
from typing import Any, ClassVar, Mapping, Sequence

from hrm_mlx.errors import HrmMlxError

_REQUIRED = dataclasses.MISSING


def setting(default: Any = _REQUIRED, help: str = "", *, minimum: float | None = None,
            choices: Sequence | None = None) -> Any:
    """A settings field: its default (lists, dicts and nested settings are copied per instance), help text,
    smallest allowed value (numbers; integers default to 0) and allowed values."""
    metadata = {"help": help, "minimum": minimum, "choices": tuple(choices) if choices else None}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class Settings:
    """Base of the settings dataclasses. ``kind`` names them in messages about keys ("unknown data setting")."""

    kind: ClassVar[str] = "setting"

    @classmethod
    def from_dict(cls, data: Mapping, prefix: str = "", *, strict: bool = True):
        """An instance from ``data``; keys missing from it take their defaults. ``prefix`` is prepended to key names
        in messages ("train.data."); with ``strict``, keys that are no field are errors, else they are ignored."""
        if not isinstance(data, Mapping):
            raise HrmMlxError(f"{prefix.rstrip('.') or cls.kind + 's'} must be an object of settings, "
                              f"not {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if strict:
            unknown = sorted(set(data) - set(fields))
            if unknown:
                raise HrmMlxError(_unknown(cls, prefix, unknown[0]))
        missing = [name for name, f in fields.items() if name not in data and _is_required(f)]
        if missing:
            raise HrmMlxError(f"{prefix.rstrip('.') + ': ' if prefix else ''}missing key{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(missing)}")
        hints = typing.get_type_hints(cls)
        values = {name: _checked(data[name], hints[name], fields[name], prefix + name, strict)
                  for name in fields if name in data}
        settings = cls(**values)
        settings.validate()
        return settings

    @classmethod
    def check_partial(cls, data: Mapping, prefix: str = "") -> None:
        """Check the keys and values ``data`` gives, without requiring the others (a recipe's model section leaves
        to the data what they decide)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        for name, value in data.items():
            if name not in fields:
                raise HrmMlxError(_unknown(cls, prefix, name))
            _checked(value, hints[name], fields[name], prefix + name, True)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def required(cls) -> list[str]:
        """The fields without a default."""
        return [f.name for f in dataclasses.fields(cls) if _is_required(f)]

    def validate(self) -> None:
        """Checks across fields; raise HrmMlxError. Single values are checked by from_dict."""

    @classmethod
    def describe(cls, prefix: str = "") -> list[tuple[str, str, str]]:
        """(dotted key, default as JSON, help) of every setting, nested settings included."""
        rows = []
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind = hints[f.name]
            if isinstance(kind, type) and issubclass(kind, Settings):
                rows += kind.describe(f"{prefix}{f.name}.")
                continue
            if _is_required(f):
                default = "(required)"
            else:
                default = json.dumps(f.default_factory() if f.default is _REQUIRED else f.default)
            rows.append((prefix + f.name, default, f.metadata.get("help", "")))
        return rows


def _is_required(f: dataclasses.Field) -> bool:
    return f.default is _REQUIRED and f.default_factory is _REQUIRED


def _unknown(cls, prefix: str, key: str) -> str:
    if prefix:
        return f"unknown config key '{prefix}{key}'; known: {', '.join(f.name for f in dataclasses.fields(cls))}"
    return f"unknown {cls.kind} {key!r}; known: {', '.join(sorted(f.name for f in dataclasses.fields(cls)))}"


def _members(kind) -> tuple:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return typing.get_args(kind)
    return (kind,)


def _checked(value: Any, kind, f: dataclasses.Field | None, key: str, strict: bool) -> Any:
    """``value`` if it has the field's type (a nested Settings is built from its dict), else an HrmMlxError."""
    minimum = f.metadata.get("minimum") if f is not None else None
    choices = f.metadata.get("choices") if f is not None else None
    for member in _members(kind):
        if isinstance(member, type) and issubclass(member, Settings) and isinstance(value, Mapping):
            return member.from_dict(value, key + ".", strict=strict)
        if _fits(value, member, minimum, choices):
            return value
    wanted = " or ".join(_describe(member, minimum, choices) for member in _members(kind))
    raise HrmMlxError(f"{key} must be {wanted}, not {value!r}")


def _fits(value: Any, kind, minimum, choices) -> bool:
    if isinstance(kind, type) and issubclass(kind, Settings):
        return isinstance(value, kind)
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        low = 0 if minimum is None else minimum
        return isinstance(value, int) and not isinstance(value, bool) and value >= low
    if kind is float:
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return number and (minimum is None or value >= minimum)
    if kind is str:
        return isinstance(value, str) and (choices is None or value in choices)
    if kind is dict or typing.get_origin(kind) is dict:
        return isinstance(value, Mapping)
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        return isinstance(value, (list, tuple)) and all(_fits(v, item, minimum, None) for v in value)
    return False


def _describe(kind, minimum, choices) -> str:
    if kind is type(None):
        return "null"
    if kind is bool:
        return "true or false"
    if kind is int:
        low = 0 if minimum is None else minimum
        return {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
    if kind is float:
        return "a finite number" if minimum is None else (
            "a non-negative number" if minimum == 0 else f"a number >= {minimum}")
    if kind is str:
        return f"one of {', '.join(map(repr, choices))}" if choices else "a string"
    if typing.get_origin(kind) is list:
        return f"a list of {_describe(typing.get_args(kind)[0], minimum, None).removeprefix('a ').removeprefix('an ')}s"
    if isinstance(kind, type) and issubclass(kind, Settings):
        return f"an object of {kind.kind}s"
    return "an object"


def parse_value(text: str) -> Any:
    """A --set value: JSON when it parses (numbers, true/false/null, lists, objects), else the plain string."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text


def parse_assignment(item: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-4"`` -> (["train", "lr"], 0.0003)."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise HrmMlxError(f"a setting is KEY=VALUE (e.g. train.lr=3e-4), got {item!r}")
    return key.strip().split("."), parse_value(value.strip())


def override(tree: dict, path: Sequence[str], value: Any) -> None:
    """Set the dotted ``path`` of a settings dict (creating intermediate objects); the result is checked when the
    dict is read with ``from_dict``."""
    node = tree
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value
