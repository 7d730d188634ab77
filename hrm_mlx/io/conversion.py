"""Official PyTorch checkpoints into model folders: read without torch, names mapped by the family's
``Model.sanitize()``, and what the official config leaves to the dataset inferred (see ``hrm_mlx.io``)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from hrm_mlx import tasks
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.io import third_party
from hrm_mlx.io.folders import (CARD_FILE, CONFIG_FILE, DEFAULT_MAX_SHARD_SIZE, DTYPES, IDENTIFIERS_FILE, build_model,
                                check_safetensors, check_weights, family_module, is_model_folder, load_folder,
                                one_line, read_identifiers, read_json, save, shape_text, validate_config,
                                weight_files)

OFFICIAL_CHECKPOINT = third_party.OFFICIAL_CHECKPOINT
OFFICIAL_CONFIG = "all_config.yaml"


def _read_config_file(path: Path) -> dict:
    """A JSON or YAML file (all_config.yaml, an arch yaml, a config.json)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise HrmMlxError(f"{path}: cannot read ({one_line(error)})") from None
    if path.suffix.lower() == ".json":
        data = read_json(text, path)
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise HrmMlxError(f"{path}: invalid YAML ({one_line(error)})") from None
    if not isinstance(data, dict):
        raise HrmMlxError(f"{path}: expected a mapping of config fields")
    return data


def _config_source(config: str | os.PathLike | dict | None) -> tuple[dict, str]:
    """A given config: a dict, a JSON/YAML file, or a recipe name. Returns (data, description)."""
    if isinstance(config, dict):
        return config, "the given config"
    path = Path(config).expanduser()
    if path.is_file():
        return _read_config_file(path), str(path)
    from hrm_mlx import recipes

    if str(config) in recipes.names():
        recipe = recipes.load(str(config))
        data = dict(recipe["model"])
        if recipe.get("task"):
            data["task"] = recipe["task"]
        return data, f"recipe {config}"
    raise HrmMlxError(f"config {config}: no such file, nor a recipe name ({', '.join(recipes.names())})")


def _resolve_interpolations(arch: dict, where: str) -> dict:
    """Resolve the ``${.key}`` sibling references an unresolved hydra dump may hold (e.g. puzzle_emb_ndim)."""
    out = dict(arch)
    for key, value in arch.items():
        if isinstance(value, str) and (m := re.fullmatch(r"\$\{\.(\w+)\}", value.strip())):
            if m.group(1) not in arch or isinstance(arch[m.group(1)], str):
                raise HrmMlxError(f"{where}: cannot resolve {key}: {value}")
            out[key] = arch[m.group(1)]
    return out


def _family_of(arch: dict, where: str) -> str:
    if "family" in arch:
        return arch["family"]
    name = arch.get("name")
    if name is None:
        return "hrm"
    module = str(name).split("@")[0].lower()
    for family in ("hrm", "trm"):
        if family in module.split(".")[-1] or module.endswith(family):
            return family
    raise HrmMlxError(f"{where}: unsupported architecture {name!r} (hrm-mlx converts HRM and TRM checkpoints)")


def _normalise_config(data: dict, where: str) -> tuple[dict, str | None, Any]:
    """Official PretrainConfig dump, arch yaml or config.json -> (flat arch fields, data_path, task)."""
    arch = data.get("arch") if isinstance(data.get("arch"), dict) else data
    arch = _resolve_interpolations(arch, where)
    flat = {k: v for k, v in arch.items() if k not in ("name", "loss", "causal", "batch_size")}
    loss = arch.get("loss")
    if isinstance(loss, dict) and "loss_type" in loss:
        flat["loss_type"] = loss["loss_type"]
    flat["family"] = _family_of(arch, where)
    task = flat.pop("task", data.get("task"))
    data_path = data.get("data_path")
    if data_path is None and isinstance(data.get("data_paths"), list) and data["data_paths"]:
        data_path = data["data_paths"][0]  # the TRM trainer's list of data sets
    return flat, data_path, task


def _task_from_path(data_path: str | None) -> str | None:
    if not data_path:
        return None
    name = os.path.basename(str(data_path).rstrip("/"))
    return next((task.name for task in tasks.all_tasks() if task.names_data_path(name)), None)


def _task_from_vocab(vocab_size) -> str | None:
    """The task of official models with this vocabulary, if exactly one has it."""
    found = [task.name for task in tasks.all_tasks() if task.official_seq_len and task.vocab_size == vocab_size]
    return found[0] if len(found) == 1 else None


def _infer(config: dict, weights: dict[str, np.ndarray], data_path, task, *, task_flag, seq_len_flag,
           defaults: dict, notes: list[str], where: str) -> dict:
    """Fill in what the official config leaves to the dataset, from weight shapes, flags and the task.
    ``defaults``: the family's ModelArgs defaults."""
    emb = weights.get("embed_tokens.weight")
    if emb is not None and emb.ndim == 2:
        config["vocab_size"] = int(emb.shape[0])
        config.setdefault("hidden_size", int(emb.shape[1]))
    table = weights.get("puzzle_emb.weight")
    if table is not None and table.ndim == 2:
        if config.get("puzzle_emb_ndim") not in (None, int(table.shape[1])):
            notes.append(f"puzzle_emb_ndim {table.shape[1]} from the weights (the config said "
                         f"{config['puzzle_emb_ndim']})")
        config["num_puzzle_identifiers"], config["puzzle_emb_ndim"] = int(table.shape[0]), int(table.shape[1])
    else:
        config["puzzle_emb_ndim"] = 0
        config.setdefault("num_puzzle_identifiers", 1)
    for level in ("H", "L"):
        layers = {int(m.group(1)) for k in weights if (m := re.match(rf"{level}_level\.layers\.(\d+)\.", k))}
        if layers and f"{level}_layers" not in config:
            config[f"{level}_layers"] = max(layers) + 1
    if "pos_encodings" not in config:
        config["pos_encodings"] = "learned" if "embed_pos.weight" in weights else "rope"

    # The task: flag, config, data path, vocabulary size.
    task_name = task_flag or (task.get("name") if isinstance(task, dict) else task)
    if task_name is None and (task_name := _task_from_path(data_path)):
        notes.append(f"task {task_name} from data_path {data_path}")
    if task_name is None and (task_name := _task_from_vocab(config.get("vocab_size"))):
        notes.append(f"task {task_name} from vocab_size {config['vocab_size']}")
    try:
        task_of = tasks.get(task_name) if task_name is not None else None
    except HrmMlxError as error:
        raise HrmMlxError(f"{where}: {error}") from None

    # The sequence length: learned positions, flag, config, task.
    pos = weights.get("embed_pos.weight")
    if pos is not None and pos.ndim == 2 and "hidden_size" in config:
        ndim, hidden = config.get("puzzle_emb_ndim", 0), config["hidden_size"]
        # rows minus the puzzle-embedding positions (TRM sets their number; 0 or HRM: ceil(ndim / hidden))
        prefix = config.get("puzzle_emb_len", defaults.get("puzzle_emb_len", 0)) or -(ndim // -hidden)
        inferred = int(pos.shape[0]) - prefix
        if seq_len_flag is not None and seq_len_flag != inferred:
            raise HrmMlxError(f"{where}: seq_len {seq_len_flag} contradicts the learned position table "
                              f"embed_pos.weight {shape_text(pos.shape)} (seq_len {inferred})")
        config["seq_len"] = inferred
    elif seq_len_flag is not None:
        config["seq_len"] = seq_len_flag
    elif "seq_len" not in config and task_of is not None and task_of.official_seq_len:
        config["seq_len"] = task_of.official_seq_len
        notes.append(f"seq_len {config['seq_len']} from the task {task_name}")

    if task_of is not None:
        seq = config.get("seq_len")
        given = dict(task) if isinstance(task, dict) and task.get("name") == task_name else None
        block = task_of.info_for_seq_len(seq, given) if isinstance(seq, int) and seq > 0 else None
        if block is not None:
            config["task"] = block
        elif task_flag:
            raise HrmMlxError(f"{where}: the task {task_name} does not fit seq_len {seq}")
        else:
            notes.append(f"no task: seq_len {seq} does not fit {task_name}")
    return config


def _missing_help(missing: list[str], where: str, has_config: bool) -> HrmMlxError:
    fields = ", ".join(missing)
    if missing == ["seq_len"]:
        return HrmMlxError(f"{where}: cannot tell seq_len (no learned positions, no task); give the seq_len or the task")
    if has_config:
        return HrmMlxError(f"{where}: the config lacks {fields}")
    return HrmMlxError(f"{where}: no {OFFICIAL_CONFIG} beside the checkpoint, so {fields} are unknown; give a config "
                       "(an all_config.yaml, or a JSON/YAML with the arch fields, or a recipe name)")


def convert(src: str | os.PathLike, out: str | os.PathLike, *, dtype: str | None = None,
            config: str | os.PathLike | dict | None = None, task: str | None = None, seq_len: int | None = None,
            identifiers: str | os.PathLike | None = None, revision: str | None = None,
            max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE, repo: str | None = None) -> dict:
    """Convert an official checkpoint (folder, file or Hub repo id) — or re-save a model folder with another
    dtype or shard size — into the model folder ``out``. Returns a summary: source, output, family, task,
    params, trainable_params, dtypes, bytes, files, notes (what was inferred)."""
    if dtype is not None and dtype not in DTYPES:
        raise HrmMlxError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if task is not None:
        task = tasks.get(task).name
    if seq_len is not None and seq_len <= 0:
        raise HrmMlxError(f"seq_len must be positive, not {seq_len}")
    if repo is None:
        from hrm_mlx.io.hub import locate

        source, repo = locate(src, revision)
    else:
        source = Path(src)
    names = list(read_identifiers(Path(identifiers).expanduser())) if identifiers else None
    notes: list[str] = []

    from hrm_mlx import model_card

    if is_model_folder(source):
        model, cfg = load_folder(source)
        if names is None and (source / IDENTIFIERS_FILE).is_file():
            names = read_identifiers(source / IDENTIFIERS_FILE)
        notes.append("re-saved a model folder")
        card = (source / CARD_FILE).read_text(encoding="utf-8") if (source / CARD_FILE).is_file() else None
    else:
        model, cfg, checkpoint, layout = _convert_official(source, repo, config, task, seq_len, notes, names)
        if names is None:
            beside = (source if source.is_dir() else source.parent) / IDENTIFIERS_FILE
            if beside.is_file():
                names = read_identifiers(beside)
                notes.append(f"puzzle identifiers from {beside}")
        # The card records where the weights came from; a Hub repo is the base model and lends its license.
        revision = source.name if repo and source.parent.name == "snapshots" else revision
        inside = checkpoint.relative_to(source) if source.is_dir() else Path(checkpoint.name)
        provenance = model_card.Provenance(str(source.absolute()), repo, revision, inside.as_posix(), layout, notes)
        license = (model_card.source_license(source) if repo else None) or model_card.UNKNOWN_LICENSE
        data = model_card.metadata(cfg, base_model=repo, license=license)
        params = sum(w.size for _, w in tree_flatten(model.parameters()))
        card = model_card.render(data, model_card.body(cfg, params=params, where=str(Path(out).expanduser()),
                                                       provenance=provenance))
    folder = save(model, cfg, out, identifiers=names, max_shard_size=max_shard_size, dtype=dtype, card=card)
    return _summary(repo or str(source.absolute()), folder, model, notes)


def _convert_official(source: Path, repo: str | None, config, task_flag, seq_len_flag, notes, names):
    from hrm_mlx.io.torch_checkpoint import read_torch_checkpoint

    checkpoint = third_party.locate(source)
    what = f"Hugging Face repo {repo}" if repo else str(source)
    if checkpoint is None:
        raise HrmMlxError(f"{what}: neither a model folder ({CONFIG_FILE}) nor a checkpoint ({OFFICIAL_CHECKPOINT}, "
                          f"step_<N> or *{third_party.LIGHTNING_SUFFIX} file)")
    where = repo or str(checkpoint)
    loaded = read_torch_checkpoint(checkpoint)
    if third_party.is_lightning(loaded.extras):
        if config is not None:
            raise HrmMlxError(f"{where}: a config is not used: a Lightning checkpoint carries its hyper-parameters")
        flat, weights, stored = third_party.nano_trm(loaded.arrays, loaded.dtypes, loaded.extras, where, notes)
        layout = f"nano-trm Lightning checkpoint, Lightning {loaded.extras.get('pytorch-lightning_version', '?')}"
        data_path, task, described = None, None, None
        module = family_module(flat["family"], where)
    else:
        # The architecture: the given config, else all_config.yaml beside the checkpoint, else a known repo's recipe.
        yaml_path = checkpoint.parent / OFFICIAL_CONFIG
        if config is not None:
            data, described = _config_source(config)
        elif yaml_path.is_file():
            data, described = _read_config_file(yaml_path), str(yaml_path)
        elif repo in third_party.KNOWN_REPOS:
            recipe, data_path = third_party.KNOWN_REPOS[repo]
            data, described = _config_source(recipe)
            data = {"arch": data, "data_path": data_path}
            notes.append(f"architecture from recipe {recipe} (the run's documented settings; the repo has no "
                         f"{OFFICIAL_CONFIG})")
        else:
            data, described = {}, None
        flat, data_path, task = _normalise_config(data, described or where)
        module = family_module(flat["family"], described or where)
        layout = f"official {flat['family'].upper()} trainer checkpoint"
        arrays = loaded.arrays
        by_identity = {id(a): loaded.dtypes[k] for k, a in arrays.items()}  # sanitize() renames, may transform
        weights = module.Model.sanitize(arrays)
        stored = {k: by_identity.get(id(w), "float32") for k, w in weights.items()}
        del arrays, by_identity
    del loaded

    defaults = {f.name: f.default for f in dataclasses.fields(module.ModelArgs)}
    cfg = _infer(flat, weights, data_path, task, task_flag=task_flag, seq_len_flag=seq_len_flag, defaults=defaults,
                 notes=notes, where=where)
    missing = [name for name in module.ModelArgs.required() if name not in cfg]
    if missing:
        raise _missing_help(missing, described or where, described is not None)
    known = {f.name for f in dataclasses.fields(module.ModelArgs)}
    cfg = {"family": cfg["family"], **{k: v for k, v in cfg.items() if k in known},
           **({"task": cfg["task"]} if "task" in cfg else {})}
    validate_config(cfg, described or where)
    model = build_model(cfg, described or where)

    mlx_weights = {}
    for k in list(weights):
        w = weights.pop(k)
        if w.dtype.kind == "f":
            target = {"bfloat16": mx.bfloat16, "float16": mx.float16}.get(stored.get(k), mx.float32)
            mlx_weights[k] = mx.array(w.astype(np.float32, copy=False)).astype(target)
        else:
            mlx_weights[k] = mx.array(w)
        mx.eval(mlx_weights[k])
    check_weights(model, mlx_weights, where)
    model.update(tree_unflatten(list(mlx_weights.items())))
    if names is not None and len(names) != cfg["num_puzzle_identifiers"]:
        raise HrmMlxError(f"{len(names)} puzzle identifiers for a checkpoint with {cfg['num_puzzle_identifiers']} "
                          "puzzle embeddings")
    return model, cfg, checkpoint, layout


def _summary(source: str, folder: Path, model, notes: list[str]) -> dict:
    params = dict(tree_flatten(model.parameters()))
    trainable = dict(tree_flatten(model.trainable_parameters()))
    files = sorted(p.name for p in folder.iterdir())
    config = json.loads((folder / CONFIG_FILE).read_text())
    return {
        "source": source,
        "output": str(folder),
        "family": config.get("family", "hrm"),
        "task": (config.get("task") or {}).get("name"),
        "params": sum(w.size for w in params.values()),
        "trainable_params": sum(w.size for w in trainable.values()),
        "dtypes": _stored_dtypes(folder),
        "bytes": sum((folder / f).stat().st_size for f in files),
        "files": files,
        "notes": notes,
    }


_DTYPE_NAMES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "F64": "float64"}


def _stored_dtypes(folder: Path) -> list[str]:
    found = set()
    for path in weight_files(folder)[0]:
        found |= {_DTYPE_NAMES.get(d, d) for d, _ in check_safetensors(path).values()}
    return sorted(found)
