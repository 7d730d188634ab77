"""Training configuration: recipes, the typed training settings, overrides, and the step schedule.

A recipe (``hrm_mlx/recipes/*.json``) and a run's ``config.json`` are both a serialised ``RunConfig``: the task,
the model's config fields (``model``) and the training settings (``train``: ``TrainConfig``, whose ``data`` is the
task's ``DataConfig``). ``resolve_config`` reads one, applies ``section.key=value`` overrides and checks every key
and value once.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

from hrm_mlx import data as datasets
from hrm_mlx import tasks
from hrm_mlx.config import Settings, override, parse_assignment, setting
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks.base import DataConfig


@dataclass
class TrainConfig(Settings):
    """The training settings (``train`` of a recipe), with the official defaults."""

    kind: ClassVar[str] = "training setting"

    global_batch_size: int = setting(768, "examples per optimizer step, over all ranks", minimum=1)
    epochs: float = setting(100000, "passes over the training groups (official); sets the steps unless 'steps' does",
                            minimum=0)
    eval_interval: int | None = setting(None, "epochs between evaluations (official); also the loader's epochs per "
                                        "iteration", minimum=1)
    steps: int | None = setting(None, "total optimizer steps; null: epochs x groups x mean examples / batch",
                                minimum=1)
    lr: float = setting(1e-4, "peak learning rate of AdamATan2", minimum=0)
    lr_min_ratio: float = setting(1.0, "the cosine schedule ends at lr x this", minimum=0)
    lr_warmup_steps: int = setting(2000, "steps of linear warm-up")
    beta1: float = setting(0.9, "AdamATan2 beta1", minimum=0)
    beta2: float = setting(0.95, "AdamATan2 beta2", minimum=0)
    weight_decay: float = setting(0.1, "decoupled weight decay of AdamATan2", minimum=0)
    puzzle_emb_lr: float = setting(1e-2, "learning rate of the puzzle embeddings (sparse SignSGD)", minimum=0)
    puzzle_emb_weight_decay: float = setting(0.1, "weight decay of the puzzle embeddings", minimum=0)
    seed: int = setting(0, "seed of the initial weights, exploration and data order")
    ema: bool = setting(False, "keep an EMA of the weights for evaluation and the saved model (TRM recipes)")
    ema_rate: float = setting(0.999, "EMA decay per step", minimum=0)
    eval_every: int | None = setting(None, "steps between evaluations; null: eval_interval in steps, else a tenth "
                                     "of the run", minimum=1)
    eval_examples: int | None = setting(None, "test examples per evaluation; null: the whole test split (official)",
                                        minimum=1)
    checkpoint_every: int | None = setting(None, "steps between checkpoints; null: eval_every", minimum=1)
    keep_checkpoints: int = setting(2, "checkpoints kept on disk", minimum=1)
    log_every: int = setting(10, "steps between log lines (metrics.jsonl)", minimum=1)
    compile: bool = setting(True, "mx.compile the training step")
    init_from: str | None = setting(None, "a model folder or repo whose weights start the run (a curriculum stage); "
                                    "same shapes")
    think_at_least: int = setting(0, "every training row thinks at least a number of ACT steps drawn uniformly from "
                                  "this..halt_max_steps (once, when it starts) before its halt head may stop it: "
                                  "solved rows keep thinking, so the update learns to keep a solved answer and "
                                  "long puzzles get their steps; 0: the official exploration only", minimum=0)
    data: DataConfig | None = setting(None, "the task's data settings (train.data.*)")


@dataclass
class RunConfig:
    """What a run trains: a recipe with every setting filled in (the run's config.json)."""

    task: str
    model: dict  # config.json fields of the model; the data decide seq_len, vocab_size and num_puzzle_identifiers
    train: TrainConfig
    recipe: str | None = None
    description: str = ""

    @classmethod
    def from_dict(cls, raw: dict) -> "RunConfig":
        if not isinstance(raw.get("model"), dict):
            raise HrmMlxError("a recipe needs a model section (an object of model config fields)")
        task = tasks.get(raw.get("task"))
        model = _checked_model(copy.deepcopy(raw["model"]))
        train = copy.deepcopy(raw.get("train") or {})
        if not isinstance(train, dict):
            raise HrmMlxError("train must be an object of training settings")
        data = datasets.resolve(task, train.pop("data", {}), "train.data.")
        settings = TrainConfig.from_dict({**train, "data": data}, "train.")
        return cls(task.name, model, settings, raw.get("recipe"), raw.get("description", ""))

    def to_dict(self) -> dict:
        return {"recipe": self.recipe, "description": self.description, "task": self.task,
                "model": copy.deepcopy(self.model), "train": self.train.to_dict()}


def _checked_model(model: dict) -> dict:
    """A recipe's model section with its keys and values checked (the family's ModelArgs fields and the mixer's
    options; the data add seq_len, vocab_size and num_puzzle_identifiers later)."""
    from hrm_mlx.models import FAMILIES
    from hrm_mlx.models.mixers import mixer_class, options_from_legacy

    family = model.get("family", "hrm")
    if family not in FAMILIES:
        raise HrmMlxError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    mixer = model.get("mixer", "attention")
    if isinstance(mixer, str):
        model = options_from_legacy(mixer, model, strict=True)
    FAMILIES[family].ModelArgs.check_partial({k: v for k, v in model.items() if k != "family"}, "model.")
    mixer_class(mixer).check_partial(model.get("mixer_args", {}), "model.mixer_args.")
    return model


def load_recipe(name_or_path: str) -> dict:
    """A recipe by name (hrm_mlx/recipes) or a JSON file path."""
    from hrm_mlx import recipes

    path = Path(name_or_path).expanduser()
    if name_or_path.endswith(".json") or path.is_file():
        try:
            recipe = json.loads(path.read_text())
        except FileNotFoundError:
            raise HrmMlxError(f"recipe file {name_or_path!r} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise HrmMlxError(f"cannot read recipe {name_or_path}: {' '.join(str(error).split())}") from None
        if isinstance(recipe, dict):
            recipe.setdefault("recipe", path.stem)
    else:
        recipe = recipes.load(name_or_path)
        recipe["recipe"] = name_or_path
    if not isinstance(recipe, dict) or not isinstance(recipe.get("model"), dict) or "task" not in recipe:
        raise HrmMlxError(f"recipe {name_or_path!r} needs a task and a model section")
    return recipe


def resolve_config(recipe: dict, overrides: Sequence[str] | Sequence[tuple] = ()) -> RunConfig:
    """The full training config: defaults, the recipe, then ``overrides`` ("train.lr=3e-4" or parsed (path,
    value) pairs), checked once. Keys start with task, model., train. or train.data."""
    raw = copy.deepcopy(recipe)
    raw.setdefault("train", {})
    for item in overrides:
        path, value = parse_assignment(item) if isinstance(item, str) else item
        if path != ["task"] and (path[0] not in ("model", "train") or len(path) < 2):
            raise HrmMlxError(f"unknown config key {'.'.join(path)!r} (keys start with model., train. or "
                              f"train.data.)")
        override(raw, path, value)
    return RunConfig.from_dict(raw)


def model_config(config: RunConfig, meta: dict) -> dict:
    """The model's config.json fields: the recipe's, with the sizes the data decide (as the official
    pretrain takes them from dataset.json) and the task."""
    model = dict(config.model)
    model.setdefault("family", "hrm")
    model.update(seq_len=int(meta["seq_len"]), vocab_size=int(meta["vocab_size"]),
                 num_puzzle_identifiers=int(meta["num_puzzle_identifiers"]))
    model["task"] = tasks.get(config.task).model_info(config.train.data)
    return model


def schedule(train: TrainConfig, meta: dict) -> dict:
    """Total steps, evaluation and checkpoint intervals (in optimizer steps)."""
    per_epoch = meta["total_groups"] * meta["mean_puzzle_examples"] / train.global_batch_size
    total = int(train.steps) if train.steps else int(train.epochs * per_epoch)
    if total < 1:
        raise HrmMlxError("the run has no steps: the data set is smaller than one batch; set train.steps")
    if train.eval_every:
        eval_every = int(train.eval_every)
    elif train.eval_interval:
        eval_every = max(1, int(train.eval_interval * per_epoch))
    else:
        eval_every = max(1, total // 10)
    return {"total_steps": total, "eval_every": eval_every,
            "checkpoint_every": int(train.checkpoint_every or eval_every),
            "epochs_per_iter": int(train.eval_interval or 1)}
