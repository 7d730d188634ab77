"""Training configuration: recipes, defaults, ``--set`` overrides, validation and the step schedule."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Sequence


from hrm_mlx import data as datasets
from hrm_mlx.errors import HrmMlxError


TRAIN_DEFAULTS = {
    "global_batch_size": 768,
    "epochs": 100000,
    "eval_interval": None,  # epochs between evaluations (official); also the loader's epochs per iteration
    "steps": None,  # total optimizer steps; None: int(epochs * groups * mean examples / global_batch_size)
    "lr": 1e-4,
    "lr_min_ratio": 1.0,
    "lr_warmup_steps": 2000,
    "beta1": 0.9,
    "beta2": 0.95,
    "weight_decay": 0.1,
    "puzzle_emb_lr": 1e-2,
    "puzzle_emb_weight_decay": 0.1,
    "seed": 0,
    "ema": False,
    "ema_rate": 0.999,
    "eval_every": None,  # steps; None: eval_interval in steps, else a tenth of the run
    "eval_examples": None,  # test examples per evaluation; None: the whole test split (official)
    "checkpoint_every": None,  # steps; None: eval_every
    "keep_checkpoints": 2,
    "log_every": 10,
    "compile": True,
    "init_from": None,  # a model folder or repo whose weights start the run (a curriculum stage); same shapes
    "data": {},
}
DEFAULT_RECIPES = {"sudoku": "sudoku-cpu", "maze": "maze-cpu", "arc": "arc-cpu"}


def load_recipe(name_or_path: str) -> dict:
    """A recipe by name (hrm_mlx/recipes) or a JSON file path."""
    from hrm_mlx import recipes

    path = Path(name_or_path).expanduser()
    if name_or_path.endswith(".json") or path.is_file():
        try:
            recipe = json.loads(path.read_text())
        except FileNotFoundError:
            raise HrmMlxError(f"recipe file {name_or_path!r} does not exist") from None
        except (OSError, json.JSONDecodeError) as error:
            raise HrmMlxError(f"cannot read recipe {name_or_path}: {error}") from None
        recipe.setdefault("recipe", path.stem)
    else:
        recipe = recipes.load(name_or_path)
        recipe["recipe"] = name_or_path
    if not isinstance(recipe, dict) or not isinstance(recipe.get("model"), dict) or "task" not in recipe:
        raise HrmMlxError(f"recipe {name_or_path!r} needs a task and a model section")
    return recipe


def parse_value(text: str):
    """A --set value: JSON when it parses (numbers, true/false/null, lists), else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: Sequence[str]) -> list[tuple[list[str], object]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HrmMlxError(f"--set takes KEY=VALUE (e.g. train.lr=3e-4), got {item!r}")
        out.append((key.strip().split("."), parse_value(value.strip())))
    return out


def _model_fields(family: str) -> set[str]:
    from hrm_mlx.models import FAMILIES

    if family not in FAMILIES:
        raise HrmMlxError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    return {f.name for f in dataclasses.fields(FAMILIES[family].ModelArgs)} | {"family"}


def resolve_config(recipe: dict, overrides: Sequence[str] | Sequence[tuple] = ()) -> dict:
    """The full training config: defaults, the recipe, then ``overrides`` ("train.lr=3e-4" or parsed pairs).
    Every key must exist (model keys are the family's ModelArgs fields); returns a new dict."""
    config = {
        "recipe": recipe.get("recipe"),
        "description": recipe.get("description", ""),
        "task": recipe["task"],
        "model": copy.deepcopy(recipe["model"]),
        "train": {**copy.deepcopy(TRAIN_DEFAULTS), **copy.deepcopy(recipe.get("train", {}))},
    }
    pairs = parse_overrides(overrides) if overrides and isinstance(overrides[0], str) else list(overrides)
    for path, value in pairs:
        if path == ["task"]:
            config["task"] = value
            continue
        if path[0] not in ("model", "train") or len(path) < 2:
            raise HrmMlxError(f"unknown config key {'.'.join(path)!r} (keys start with model., train. or "
                              f"train.data.)")
        node = config
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    validate_config(config)
    return config


def validate_config(config: dict) -> None:
    task = config["task"]
    train = config["train"]
    unknown = sorted(set(train) - set(TRAIN_DEFAULTS))
    if unknown:
        raise HrmMlxError(f"unknown config key 'train.{unknown[0]}'; known: {', '.join(sorted(TRAIN_DEFAULTS))}")
    data = train.get("data")
    if not isinstance(data, dict):
        raise HrmMlxError("train.data must be an object of data settings")
    try:
        train["data"] = datasets.resolve(task, data)
    except HrmMlxError as error:
        raise HrmMlxError(str(error).replace("unknown data setting '", "unknown config key 'train.data.")) from None
    model = config["model"]
    fields = _model_fields(model.get("family", "hrm"))
    unknown = sorted(set(model) - fields)
    if unknown:
        raise HrmMlxError(f"unknown config key 'model.{unknown[0]}' for the {model.get('family', 'hrm')} family")
    for key in ("global_batch_size", "log_every", "keep_checkpoints", "lr_warmup_steps"):
        if not isinstance(train[key], int) or isinstance(train[key], bool) or train[key] < (0 if key ==
                                                                                             "lr_warmup_steps" else 1):
            raise HrmMlxError(f"train.{key} must be a positive integer, not {train[key]!r}")
    for key in ("steps", "eval_every", "checkpoint_every", "eval_examples", "eval_interval"):
        value = train[key]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise HrmMlxError(f"train.{key} must be a positive integer or null, not {value!r}")
    for key in ("lr", "lr_min_ratio", "beta1", "beta2", "weight_decay", "puzzle_emb_lr", "puzzle_emb_weight_decay",
                "ema_rate", "epochs"):
        if not isinstance(train[key], (int, float)) or isinstance(train[key], bool) or train[key] < 0:
            raise HrmMlxError(f"train.{key} must be a non-negative number, not {train[key]!r}")


def model_config(config: dict, meta: dict) -> dict:
    """The model's config.json fields: the recipe's, with the sizes the data decide (as the official
    pretrain takes them from dataset.json) and the task."""
    model = dict(config["model"])
    model.setdefault("family", "hrm")
    model.update(seq_len=int(meta["seq_len"]), vocab_size=int(meta["vocab_size"]),
                 num_puzzle_identifiers=int(meta["num_puzzle_identifiers"]))
    model["task"] = datasets.task_info(config["task"], config["train"]["data"])
    return model


def schedule(train: dict, meta: dict) -> dict:
    """Total steps, evaluation and checkpoint intervals (in optimizer steps)."""
    per_epoch = meta["total_groups"] * meta["mean_puzzle_examples"] / train["global_batch_size"]
    total = int(train["steps"]) if train["steps"] else int(train["epochs"] * per_epoch)
    if total < 1:
        raise HrmMlxError("the run has no steps: the data set is smaller than one batch; set train.steps")
    if train["eval_every"]:
        eval_every = int(train["eval_every"])
    elif train["eval_interval"]:
        eval_every = max(1, int(train["eval_interval"] * per_epoch))
    else:
        eval_every = max(1, total // 10)
    return {"total_steps": total, "eval_every": eval_every,
            "checkpoint_every": int(train["checkpoint_every"] or eval_every),
            "epochs_per_iter": int(train["eval_interval"] or 1)}
