"""Model folders on disk: config.json, safetensors weights (one file or shards with an index) and
identifiers.json; reading them with every check a corrupted or mismatched folder needs, and writing them
atomically. The format is described in ``hrm_mlx.io``."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten

from hrm_mlx import atomic, tasks
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models.mixers import LEGACY_OPTIONS

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
IDENTIFIERS_FILE = "identifiers.json"
CARD_FILE = "README.md"
# config.json keys besides the model fields: what the model solves, and for trained models their data and recipe
FOLDER_KEYS = ("family", "task", "data", "recipe")
DEFAULT_MAX_SHARD_SIZE = 2_000_000_000

DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}

_SAFETENSORS_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                         "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "C64": 8,
                         "F8_E4M3": 1, "F8_E5M2": 1}


def one_line(text: Any) -> str:
    return " ".join(str(text).split()) or "no details"


# ------------------------------------------------------------------------------------------------- config


def family_module(family: Any, where: str):
    from hrm_mlx.models import FAMILIES

    if not isinstance(family, str) or family not in FAMILIES:
        raise HrmMlxError(f"{where}: unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[family]


def validate_config(config: Any, where: str = "config") -> dict:
    """Check a config.json dict (format in hrm_mlx.io): the family's ModelArgs (every field) and the task block;
    return it. Raises one-line HrmMlxErrors."""
    if not isinstance(config, dict):
        raise HrmMlxError(f"{where}: must be a JSON object, not {type(config).__name__}")
    module = family_module(config.get("family", "hrm"), where)
    known = {*FOLDER_KEYS, *LEGACY_OPTIONS, *(f.name for f in dataclasses.fields(module.ModelArgs))}
    unknown = sorted(set(config) - known)
    if unknown:
        raise HrmMlxError(f"{where}: unknown key {unknown[0]!r} (a {config.get('family', 'hrm')} config.json holds "
                          f"the model fields, {', '.join(FOLDER_KEYS)})")
    try:
        args = module.ModelArgs.from_dict(config)
    except HrmMlxError as error:
        raise HrmMlxError(f"{where}: {error}") from None
    _validate_task(config.get("task"), args.seq_len, where)
    return config


def _validate_task(task: Any, seq_len: int, where: str) -> None:
    if task is None:
        return
    if not isinstance(task, dict) or not isinstance(task.get("name"), str):
        raise HrmMlxError(f"{where}: task must be an object with a name, not {task!r}")
    try:
        found = tasks.get(task["name"])
        found.check_info(task)
    except HrmMlxError as error:
        raise HrmMlxError(f"{where}: {error}") from None
    expected = found.seq_len(task)
    if expected is not None and seq_len != expected:
        raise HrmMlxError(f"{where}: seq_len is {seq_len}, but {found.name} puzzles as its task block says "
                          f"({json.dumps(task, separators=(', ', ': '))}) take {expected} tokens")


def read_config(folder: str | Path) -> dict:
    """Read and validate ``<folder>/config.json``."""
    path = Path(folder) / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HrmMlxError(f"{folder}: not a model folder (no {CONFIG_FILE})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HrmMlxError(f"{path}: cannot read ({one_line(error)})") from None
    return validate_config(read_json(text, path), str(path))


def read_json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise HrmMlxError(f"{path}: invalid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    except RecursionError:
        raise HrmMlxError(f"{path}: invalid JSON (nested too deeply)") from None


# ------------------------------------------------------------------------------------------------ weights


def check_safetensors(path: Path) -> dict[str, tuple[str, list[int]]]:
    """Parse and bounds-check a safetensors header; return {name: (dtype, shape)}. Catches truncated files,
    corrupted headers and trailing garbage before MLX reads anything."""
    bad = f"{path}: truncated or corrupted safetensors file"
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise HrmMlxError(f"{bad} ({size} bytes)")
            n = int.from_bytes(head, "little")
            if n > size - 8 or n > 100_000_000:
                raise HrmMlxError(f"{bad} (header of {n} bytes in a file of {size})")
            header = fh.read(n)
    except OSError as error:
        raise HrmMlxError(f"{path}: cannot read ({one_line(error)})") from None
    try:
        meta = json.loads(header)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise HrmMlxError(f"{bad} (header is not JSON)") from None
    if not isinstance(meta, dict):
        raise HrmMlxError(f"{bad} (header is not a JSON object)")
    tensors, end = {}, 0
    for name, info in meta.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, stop) = info["dtype"], info["shape"], info["data_offsets"]
            itemsize = _SAFETENSORS_ITEMSIZE[dtype]
            if not all(isinstance(d, int) and d >= 0 for d in shape):
                raise ValueError
            if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop):
                raise ValueError
            if stop - start != math.prod(shape) * itemsize:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise HrmMlxError(f"{bad} (bad header entry for {name!r})") from None
        tensors[name] = (dtype, list(shape))
        end = max(end, stop)
    if 8 + n + end != size:
        raise HrmMlxError(f"{bad} (data ends at byte {8 + n + end}, the file has {size})")
    return tensors


def weight_files(folder: Path) -> tuple[list[Path], dict[str, str] | None]:
    """The safetensors files of a model folder and, for shards, the index's weight map."""
    index_path = folder / INDEX_FILE
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            weight_map = index["weight_map"]
            if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
                raise TypeError
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError, KeyError, TypeError):
            raise HrmMlxError(f"{index_path}: invalid index (expected JSON with a weight_map of file names)") from None
        names = sorted(set(weight_map.values()))
        for name in names:
            if Path(name).name != name:
                raise HrmMlxError(f"{index_path}: shard name {name!r} is not a plain file name")
            if not (folder / name).is_file():
                raise HrmMlxError(f"{folder}: shard {name} listed in {INDEX_FILE} is missing")
        return [folder / n for n in names], weight_map
    single = folder / WEIGHTS_FILE
    if single.is_file():
        return [single], None
    raise HrmMlxError(f"{folder}: no weights ({WEIGHTS_FILE} or {INDEX_FILE})")


def _read_weights(folder: Path) -> dict[str, mx.array]:
    files, weight_map = weight_files(folder)
    weights: dict[str, mx.array] = {}
    for path in files:
        header = check_safetensors(path)
        if weight_map is not None:
            listed = {k for k, v in weight_map.items() if v == path.name}
            if listed != header.keys():
                diff = sorted(listed ^ header.keys())
                raise HrmMlxError(f"{path}: its tensors do not match {INDEX_FILE} (e.g. {diff[0]!r})")
        try:
            loaded = mx.load(str(path))
        except (RuntimeError, ValueError, OSError) as error:
            raise HrmMlxError(f"{path}: truncated or corrupted safetensors file ({one_line(error)})") from None
        for name in loaded:
            if name in weights:
                raise HrmMlxError(f"{folder}: weight {name!r} occurs in more than one shard")
        weights.update(loaded)
    return weights


def shape_text(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def check_weights(model, weights: dict, where: str) -> None:
    """Every weight the model has, no other, each of the model's shape and a floating dtype."""
    expected = dict(tree_flatten(model.parameters()))
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]

    def more(items):
        return f" (and {len(items) - 1} more)" if len(items) > 1 else ""

    if missing:
        k = missing[0]
        raise HrmMlxError(f"{where}: weight {k!r} {shape_text(expected[k].shape)} is missing{more(missing)}")
    if unexpected:
        k = unexpected[0]
        raise HrmMlxError(f"{where}: unexpected weight {k!r} {shape_text(weights[k].shape)}{more(unexpected)}; "
                          "it does not belong to the model config.json describes")
    for k, ref in expected.items():
        w = weights[k]
        if tuple(w.shape) != tuple(ref.shape):
            raise HrmMlxError(f"{where}: weight {k!r} has shape {shape_text(w.shape)}, the config expects "
                              f"{shape_text(ref.shape)}")
        if not mx.issubdtype(w.dtype, mx.floating):
            raise HrmMlxError(f"{where}: weight {k!r} has dtype {w.dtype}, expected a floating-point dtype")


def build_model(config: dict, where: str):
    from hrm_mlx.models import build

    try:
        return build(config)
    except HrmMlxError as error:
        raise HrmMlxError(f"{where}: {error}") from None
    except (TypeError, ValueError, ZeroDivisionError) as error:
        raise HrmMlxError(f"{where}: invalid model config ({one_line(error)})") from None


def validate_folder(folder: str | os.PathLike) -> dict:
    """Check a model folder without loading its weights (config.json, and each safetensors header against the
    index); return its config."""
    folder = Path(folder)
    config = read_config(folder)
    for path in weight_files(folder)[0]:
        check_safetensors(path)
    return config


def load_folder(folder: Path):
    config = read_config(folder)
    model = build_model(config, str(folder / CONFIG_FILE))
    weights = _read_weights(folder)
    check_weights(model, weights, str(folder))
    model.update(tree_unflatten(list(weights.items())))
    return model, config


def is_model_folder(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG_FILE).is_file() and not is_run_folder(path)


RUN_MODEL = "model"  # the model folder inside a training run's folder (hrm_mlx.train)


def is_run_folder(path: Path) -> bool:
    """A training run's folder (hrm_mlx.train: config.json, metrics.jsonl, checkpoints/, model/). Its config.json
    and metrics.jsonl both, since other trainers' runs also keep a checkpoints/ folder (hrm_mlx.io.third_party)."""
    return path.is_dir() and (path / CONFIG_FILE).is_file() and (path / "metrics.jsonl").is_file()


def read_identifiers(path: Path) -> list[str]:
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise HrmMlxError(f"{path}: unreadable identifiers ({one_line(error)})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise HrmMlxError(f"{path}: identifiers must be a JSON list of names")
    return names


# ------------------------------------------------------------------------------------------------- saving


def parse_size(text: str | int) -> int:
    """Bytes from ``2000000000``, ``"2GB"``, ``"500MB"``, ``"1.5GiB"``, ``"64kB"``."""
    if isinstance(text, int):
        size = text
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?)?[bB]?\s*", str(text))
        if not m:
            raise HrmMlxError(f"cannot read the size {text!r}; write e.g. 2GB, 500MB or a number of bytes")
        unit = (m.group(2) or "").lower()
        scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
                 "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}[unit]
        size = int(float(m.group(1)) * scale)
    if size <= 0:
        raise HrmMlxError(f"the maximum shard size must be positive, not {text!r}")
    return size


_OWN_FILE = re.compile(r"^(config\.json|model(-\d{5}-of-\d{5})?\.safetensors|model\.safetensors\.index\.json"
                       r"|identifiers\.json|README\.md)$")


def _check_replaceable(folder: Path) -> None:
    if not folder.exists():
        return
    if not folder.is_dir():
        raise HrmMlxError(f"{folder}: exists and is not a folder; refusing to replace it")
    foreign = [p.name for p in folder.iterdir() if not _OWN_FILE.match(p.name)]
    if foreign:
        raise HrmMlxError(f"{folder}: exists and holds files other than a model's (e.g. {sorted(foreign)[0]}); "
                          "refusing to replace it")


def _shards(weights: dict[str, mx.array], max_bytes: int) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    used = 0
    for name, w in weights.items():
        if shards[-1] and used + w.nbytes > max_bytes:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += w.nbytes
    return shards


def save(model, config: dict, folder: str | os.PathLike, *, identifiers: list[str] | None = None,
         max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE, dtype: str | None = None, card: str | None = None) -> Path:
    """Write a model folder atomically: everything goes into a temporary sibling folder that is renamed into
    place at the end, so an interruption never leaves a half-written model at ``folder``. An existing model
    folder there is replaced; any other existing folder is refused.

    config.json = the model fields and FOLDER_KEYS of ``config`` (other keys are left out), with the model's own
    arguments (``model.args``) filled in. ``dtype`` casts every
    floating weight (float32, bfloat16, float16); None keeps each weight's dtype. ``card`` is the README.md text
    (hrm_mlx.model_card); None writes the default card. Returns the folder."""
    folder = Path(folder).expanduser().absolute()
    max_bytes = parse_size(max_shard_size)
    args = getattr(model, "args", None)
    fields = dataclasses.asdict(args) if args is not None and dataclasses.is_dataclass(args) else {}
    # family first, then the model's own arguments (they win over the given config), then the rest (task, ...);
    # mixer options an older config.json kept at the top level are in mixer_args now
    family = config.get("family", "hrm")
    known = {*FOLDER_KEYS, *(f.name for f in dataclasses.fields(family_module(family, "config").ModelArgs))}
    config = {key: value for key, value in config.items() if key in known}
    config = {"family": family, **config, **fields}
    config = {**{k: config[k] for k in ("family", *fields)}, **config}
    validate_config(config, "config")
    if identifiers is not None:
        if not isinstance(identifiers, list) or not all(isinstance(n, str) for n in identifiers):
            raise HrmMlxError("identifiers must be a list of names")
        if len(identifiers) != config["num_puzzle_identifiers"]:
            raise HrmMlxError(f"{len(identifiers)} puzzle identifiers for a model with num_puzzle_identifiers "
                              f"{config['num_puzzle_identifiers']}")
    weights = dict(tree_flatten(model.parameters()))
    if dtype is not None:
        if dtype not in DTYPES:
            raise HrmMlxError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        weights = {k: w.astype(DTYPES[dtype]) if mx.issubdtype(w.dtype, mx.floating) else w
                   for k, w in weights.items()}
    mx.eval(weights)  # read lazily loaded arrays now, before their source folder may be replaced
    _check_replaceable(folder)

    try:
        with atomic.folder(folder) as tmp:
            shards = _shards(weights, max_bytes)
            if len(shards) == 1:
                mx.save_safetensors(str(tmp / WEIGHTS_FILE), weights, metadata={"format": "mlx"})
            else:
                weight_map = {}
                for i, names in enumerate(shards, 1):
                    fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
                    mx.save_safetensors(str(tmp / fname), {k: weights[k] for k in names}, metadata={"format": "mlx"})
                    weight_map.update({k: fname for k in names})
                index = {"metadata": {"total_size": sum(w.nbytes for w in weights.values())},
                         "weight_map": weight_map}
                (tmp / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
            (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
            if card is None:
                from hrm_mlx import model_card

                card = model_card.default(config, params=sum(w.size for w in weights.values()), where=str(folder))
            (tmp / CARD_FILE).write_text(card, encoding="utf-8")
            if identifiers is not None:
                (tmp / IDENTIFIERS_FILE).write_text(json.dumps(identifiers) + "\n")
            _check_replaceable(folder)  # again: the folder may have changed while the weights were written
    except OSError as error:
        raise HrmMlxError(f"{folder}: cannot write the model ({one_line(error)})") from None
    return folder

