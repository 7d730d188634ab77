"""Training recipes as JSON files: {"description", "task", "model": config.json fields, "train": settings}."""

import json
from importlib import resources

from hrm_mlx.errors import HrmMlxError


def names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".json"))


def load(name: str) -> dict:
    path = resources.files(__name__) / f"{name}.json"
    if not path.is_file():
        raise HrmMlxError(f"unknown recipe {name!r}; known recipes: {', '.join(names())}")
    return json.loads(path.read_text())
