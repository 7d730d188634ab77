"""Model folders: load from a folder or the Hugging Face Hub, save atomically, convert official PyTorch checkpoints.

Model folder
============

A model folder holds:

* ``config.json`` (format below);
* the weights: ``model.safetensors``, or for large models shards ``model-00001-of-0000M.safetensors`` ...
  with ``model.safetensors.index.json`` = ``{"metadata": {"total_size": <bytes of tensor data>},
  "weight_map": {<weight name>: <shard file name>}}``. Weights are sharded by whole tensors: a shard is closed
  before it would exceed the maximum shard size, so a single tensor larger than the limit (the ARC-2
  checkpoint's 535M-float puzzle-embedding table) gets a shard of its own. Weight names are ours (what
  ``Model.sanitize()`` makes of the official names); dtypes are float32, bfloat16 or float16;
* optionally ``identifiers.json``: the list of puzzle-identifier names (index = puzzle id, ``"<blank>"`` at 0),
  as the official ARC dataset builder writes it, so a solver can map an ARC task name to its embedding row.

config.json
-----------

A flat JSON object::

    {
      "family": "hrm",                    # model family: a key of hrm_mlx.models.FAMILIES ("hrm"; later "trm")
      "seq_len": 81, "vocab_size": 11,    # every field of the family's ModelArgs, official names
      "num_puzzle_identifiers": 1, "puzzle_emb_ndim": 512,
      "H_cycles": 2, "L_cycles": 2, "H_layers": 4, "L_layers": 4, "hidden_size": 512, "expansion": 4,
      "num_heads": 8, "pos_encodings": "rope", "halt_max_steps": 16, "halt_exploration_prob": 0.1,
      "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "forward_dtype": "bfloat16",
      "loss_type": "stablemax_cross_entropy", "mixer": "attention",
      "task": {"name": "sudoku"}          # optional: what the model solves
    }

``task.name`` is ``"sudoku"``, ``"maze"`` or ``"arc"``; maze and ARC also give ``"canvas"`` (the side of the
square grid the sequence encodes, 30 for the official models). Model fields with a default (rms_norm_eps,
rope_theta, forward_dtype, loss_type, mixer, puzzle_emb_ndim) may be omitted; other keys are kept and ignored
by ``hrm_mlx.models.build``.

Where models come from
======================

``load(path_or_repo)`` and every ``--model`` option accept:

* a model folder;
* an official checkpoint: a folder holding a ``torch.save`` file named ``checkpoint`` (or ``step_<N>``, the
  highest N), with ``all_config.yaml`` beside it, or such a file itself; or another trainer's checkpoint
  (``hrm_mlx.third_party``: a run folder of the official TRM trainer's reproductions, a nano-trm Lightning
  ``.ckpt``), also when it sits in the one subfolder that holds checkpoints. It is converted once into
  ``<cache>/converted/<key>`` (``<cache>`` = ``$HRM_MLX_CACHE``, else ``$XDG_CACHE_HOME/hrm-mlx``, else
  ``~/.cache/hrm-mlx``; the key covers the absolute path, size and mtime of the files) and reused afterwards;
* a Hugging Face Hub repo id (``owner/name``, optional ``revision``), fetched with ``snapshot_download`` into the
  standard Hugging Face cache (``HF_HOME``, ``HF_HUB_CACHE``; ``HF_HUB_OFFLINE=1`` uses the cache only). Only the
  files matching ``HUB_FILES`` are fetched. A repo in another trainer's format (``sapientinc/HRM-checkpoint-*``,
  ``Sanjin2024/TinyRecursiveModels-*``) is converted once, keyed by repo and commit.

Official checkpoints
====================

``convert()`` reads the pickle without torch (``hrm_mlx.torch_checkpoint``: anything but tensors is refused),
maps the names through the family's ``Model.sanitize()`` and infers what the official ``all_config.yaml``
(a dump of the official PretrainConfig: ``arch: {name, loss: {name, loss_type}, H_cycles, ...}``,
``data_path`` (TRM: a list ``data_paths``), training settings) does not hold, because the official code took it from the dataset:
``vocab_size`` (embed_tokens rows), ``num_puzzle_identifiers`` and ``puzzle_emb_ndim`` (puzzle table shape),
``seq_len`` (embed_pos rows for learned positions; else ``--seq-len``; else the task: sudoku 81, maze 900,
arc 900) and the task (``--task``; else from ``data_path``; else from the vocabulary size: 11 sudoku,
6 maze, 12 arc). Without ``all_config.yaml`` the architecture comes from ``--config`` (an all_config.yaml, a
JSON/YAML with the arch fields, or a recipe name); the official ARC-2 repo, which lacks the file, falls back
to the official default architecture (recipe ``hrm-arc-1``; README: ARC-2 overrides only the data path), and
the other repos of ``third_party.KNOWN_REPOS`` to the recipes of their training commands. A nano-trm checkpoint
carries its architecture in its Lightning hyper-parameters (``third_party.nano_trm``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from hrm_mlx import third_party
from hrm_mlx.errors import HrmMlxError

__all__ = ["load", "save", "convert", "resolve", "load_identifiers", "read_config", "validate_config",
           "parse_size", "cache_dir", "DEFAULT_MAX_SHARD_SIZE"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
IDENTIFIERS_FILE = "identifiers.json"
OFFICIAL_CHECKPOINT = third_party.OFFICIAL_CHECKPOINT
OFFICIAL_CONFIG = "all_config.yaml"
# The files fetched from a Hub repo: ours or another trainer's layout, whichever the repo holds.
HUB_FILES = [CONFIG_FILE, "model*.safetensors", INDEX_FILE, IDENTIFIERS_FILE, *third_party.HUB_PATTERNS]
DEFAULT_MAX_SHARD_SIZE = 2_000_000_000

TASKS = {"sudoku": 81, "maze": 900, "arc": 900}  # task -> official sequence length
TASK_BY_VOCAB = {11: "sudoku", 6: "maze", 12: "arc"}
CANVAS_TASKS = ("maze", "arc")
DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}

_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_SAFETENSORS_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                         "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "C64": 8,
                         "F8_E4M3": 1, "F8_E5M2": 1}


def _one_line(text: Any) -> str:
    return " ".join(str(text).split()) or "no details"


# ------------------------------------------------------------------------------------------------- config


def _family_module(family: Any, where: str):
    from hrm_mlx.models import FAMILIES

    if not isinstance(family, str) or family not in FAMILIES:
        raise HrmMlxError(f"{where}: unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[family]


def _check_field(name: str, kind: str, value: Any, where: str) -> None:
    kind = kind.replace(" ", "")
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        want = "a non-negative integer"
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        want = "a finite number"
    elif kind == "str":
        ok, want = isinstance(value, str), "a string"
    else:
        return
    if not ok:
        raise HrmMlxError(f"{where}: {name} must be {want}, not {value!r}")


# Fields that must be positive (zero would break the model); other integers may be zero.
_POSITIVE = ("seq_len", "vocab_size", "num_puzzle_identifiers", "hidden_size", "num_heads", "H_cycles",
             "L_cycles", "halt_max_steps", "expansion", "rms_norm_eps", "rope_theta")


def validate_config(config: Any, where: str = "config") -> dict:
    """Check a config.json dict (format in the module docstring); return it. Raises one-line HrmMlxErrors."""
    if not isinstance(config, dict):
        raise HrmMlxError(f"{where}: must be a JSON object, not {type(config).__name__}")
    module = _family_module(config.get("family", "hrm"), where)
    args_cls = module.ModelArgs
    fields = dataclasses.fields(args_cls)
    missing = [f.name for f in fields if f.default is dataclasses.MISSING and f.name not in config]
    if missing:
        raise HrmMlxError(f"{where}: missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    for f in fields:
        if f.name in config:
            _check_field(f.name, getattr(f.type, "__name__", str(f.type)), config[f.name], where)
            if f.name in _POSITIVE and not config[f.name] > 0:
                raise HrmMlxError(f"{where}: {f.name} must be positive, not {config[f.name]!r}")
    prob = config.get("halt_exploration_prob", 0)
    if not 0 <= prob <= 1:
        raise HrmMlxError(f"{where}: halt_exploration_prob must lie in [0, 1], not {prob!r}")
    try:
        args_cls.from_dict(config)  # the family's own checks (pos_encodings, dtypes, divisibility, ...)
    except HrmMlxError as error:
        raise HrmMlxError(f"{where}: {error}") from None
    except (TypeError, ValueError, ZeroDivisionError) as error:
        raise HrmMlxError(f"{where}: invalid model fields ({_one_line(error)})") from None
    _validate_task(config.get("task"), where)
    return config


def _validate_task(task: Any, where: str) -> None:
    if task is None:
        return
    if not isinstance(task, dict) or not isinstance(task.get("name"), str):
        raise HrmMlxError(f"{where}: task must be an object with a name, not {task!r}")
    if task["name"] not in TASKS:
        raise HrmMlxError(f"{where}: unknown task {task['name']!r}; known: {', '.join(TASKS)}")
    if "canvas" in task:
        canvas = task["canvas"]
        if not (isinstance(canvas, int) and not isinstance(canvas, bool) and canvas > 0):
            raise HrmMlxError(f"{where}: task canvas must be a positive integer, not {canvas!r}")


def read_config(folder: str | Path) -> dict:
    """Read and validate ``<folder>/config.json``."""
    path = Path(folder) / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HrmMlxError(f"{folder}: not a model folder (no {CONFIG_FILE})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HrmMlxError(f"{path}: cannot read ({_one_line(error)})") from None
    return validate_config(_json(text, path), str(path))


def _json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise HrmMlxError(f"{path}: invalid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None


# ------------------------------------------------------------------------------------------------ weights


def _check_safetensors(path: Path) -> dict[str, tuple[str, list[int]]]:
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
        raise HrmMlxError(f"{path}: cannot read ({_one_line(error)})") from None
    try:
        meta = json.loads(header)
    except (json.JSONDecodeError, UnicodeDecodeError):
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


def _weight_files(folder: Path) -> tuple[list[Path], dict[str, str] | None]:
    """The safetensors files of a model folder and, for shards, the index's weight map."""
    index_path = folder / INDEX_FILE
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            weight_map = index["weight_map"]
            if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
                raise TypeError
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
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
    files, weight_map = _weight_files(folder)
    weights: dict[str, mx.array] = {}
    for path in files:
        header = _check_safetensors(path)
        if weight_map is not None:
            listed = {k for k, v in weight_map.items() if v == path.name}
            if listed != header.keys():
                diff = sorted(listed ^ header.keys())
                raise HrmMlxError(f"{path}: its tensors do not match {INDEX_FILE} (e.g. {diff[0]!r})")
        try:
            loaded = mx.load(str(path))
        except (RuntimeError, ValueError, OSError) as error:
            raise HrmMlxError(f"{path}: truncated or corrupted safetensors file ({_one_line(error)})") from None
        for name in loaded:
            if name in weights:
                raise HrmMlxError(f"{folder}: weight {name!r} occurs in more than one shard")
        weights.update(loaded)
    return weights


def _shape(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _check_weights(model, weights: dict, where: str) -> None:
    """Every weight the model has, no other, each of the model's shape and a floating dtype."""
    expected = dict(tree_flatten(model.parameters()))
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]

    def more(items):
        return f" (and {len(items) - 1} more)" if len(items) > 1 else ""

    if missing:
        k = missing[0]
        raise HrmMlxError(f"{where}: weight {k!r} {_shape(expected[k].shape)} is missing{more(missing)}")
    if unexpected:
        k = unexpected[0]
        raise HrmMlxError(f"{where}: unexpected weight {k!r} {_shape(weights[k].shape)}{more(unexpected)}; "
                          "it does not belong to the model config.json describes")
    for k, ref in expected.items():
        w = weights[k]
        if tuple(w.shape) != tuple(ref.shape):
            raise HrmMlxError(f"{where}: weight {k!r} has shape {_shape(w.shape)}, the config expects "
                              f"{_shape(ref.shape)}")
        if not mx.issubdtype(w.dtype, mx.floating):
            raise HrmMlxError(f"{where}: weight {k!r} has dtype {w.dtype}, expected a floating-point dtype")


def _build(config: dict, where: str):
    from hrm_mlx.models import build

    try:
        return build(config)
    except HrmMlxError as error:
        raise HrmMlxError(f"{where}: {error}") from None
    except (TypeError, ValueError, ZeroDivisionError) as error:
        raise HrmMlxError(f"{where}: invalid model config ({_one_line(error)})") from None


def _load_folder(folder: Path):
    config = read_config(folder)
    model = _build(config, str(folder / CONFIG_FILE))
    weights = _read_weights(folder)
    _check_weights(model, weights, str(folder))
    model.update(tree_unflatten(list(weights.items())))
    return model, config


# --------------------------------------------------------------------------------------------- resolving


def cache_dir() -> Path:
    """Root of hrm-mlx's own cache: $HRM_MLX_CACHE, else $XDG_CACHE_HOME/hrm-mlx, else ~/.cache/hrm-mlx."""
    if os.environ.get("HRM_MLX_CACHE"):
        return Path(os.environ["HRM_MLX_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "hrm-mlx"


def _hub_cache_dir() -> str | None:
    """The Hugging Face cache as the environment says now (the library reads it once, at import)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return os.path.expanduser(os.environ[var])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE") or bool(
        constants.HF_HUB_OFFLINE)


def _download(repo: str, revision: str | None) -> Path:
    """snapshot_download restricted to HUB_FILES, with every failure as a one-line HrmMlxError."""
    from huggingface_hub import snapshot_download

    offline = _hub_offline()
    rev = revision or "main"
    try:
        path = snapshot_download(repo, revision=revision, allow_patterns=HUB_FILES,
                                 ignore_patterns=third_party.HUB_IGNORE, cache_dir=_hub_cache_dir(),
                                 local_files_only=offline)
    except Exception as error:  # noqa: BLE001 - only the hub's and network errors are translated
        name = type(error).__name__
        module = type(error).__module__
        if not (module.startswith(("huggingface_hub", "httpx", "requests")) or isinstance(error, OSError)):
            raise
        if name in ("RepositoryNotFoundError", "GatedRepoError"):
            raise HrmMlxError(f"{repo}: no such local folder, and no Hugging Face repo of that name is accessible "
                              "(private or gated repos need `hf auth login`)") from None
        if name == "RevisionNotFoundError":
            raise HrmMlxError(f"{repo}: revision {rev!r} not found on the Hugging Face Hub") from None
        if name == "HFValidationError":
            raise HrmMlxError(f"{repo}: no such local folder, nor a valid Hugging Face repo id") from None
        if name in ("LocalEntryNotFoundError", "IncompleteSnapshotError", "OfflineModeIsEnabled"):
            why = ("HF_HUB_OFFLINE is set" if offline else "the Hub cannot be reached")
            raise HrmMlxError(f"{repo}: no such local folder, and as a Hugging Face repo (revision {rev}) it is not "
                              f"in the local cache while {why}") from None
        raise HrmMlxError(f"{repo}: download from the Hugging Face Hub failed ({name}: {_one_line(error)})") from None
    return Path(path)


def _is_model_folder(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG_FILE).is_file()


def _locate(path_or_repo: str | os.PathLike, revision: str | None) -> tuple[Path, str | None]:
    """(local folder or file, hub repo id or None). Downloads from the Hub when the name is not a local path."""
    text = os.fspath(path_or_repo)
    path = Path(text).expanduser()
    if path.exists():
        return path, None
    if _REPO_RE.match(text) and not text.startswith("."):
        return _download(text, revision), text
    raise HrmMlxError(f"{text}: no such model folder or checkpoint file")


def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def resolve(path_or_repo: str | os.PathLike, revision: str | None = None) -> Path:
    """The local model folder for a model folder, an official checkpoint (converted once into the cache) or a Hub
    repo id (downloaded into the Hugging Face cache, converted once if in the official format)."""
    source, repo = _locate(path_or_repo, revision)
    if _is_model_folder(source):
        return source
    checkpoint = third_party.locate(source)
    if checkpoint is None:
        what = f"Hugging Face repo {repo}" if repo else str(source)
        raise HrmMlxError(f"{what}: neither a model folder ({CONFIG_FILE}) nor an official checkpoint "
                          f"({OFFICIAL_CHECKPOINT} file)")
    if repo:
        commit = source.name
        key = f"hub|{repo}|{commit}"
        slug = f"{repo.replace('/', '--')}--{commit[:12]}"
    else:
        parts = [_file_key(checkpoint)] + [_file_key(checkpoint.parent / n) for n in (OFFICIAL_CONFIG, IDENTIFIERS_FILE)
                                           if (checkpoint.parent / n).is_file()]
        key = "local|" + "|".join(parts)
        slug = f"local--{re.sub(r'[^A-Za-z0-9._-]+', '-', checkpoint.parent.name or 'checkpoint')}"
    target = cache_dir() / "converted" / f"{slug}--{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if _is_model_folder(target):
        return target
    sys.stderr.write(f"hrm-mlx: converting the checkpoint {repo or checkpoint} once, into {target}\n")
    convert(source, target, repo=repo)
    return target


def load(path_or_repo: str | os.PathLike, revision: str | None = None):
    """Load ``(model, config)`` from a model folder, an official checkpoint or a Hugging Face repo id (see the
    module docstring). The weights keep their stored dtype. Raises HrmMlxError with a one-line message for
    anything wrong with the input."""
    return _load_folder(resolve(path_or_repo, revision))


def load_identifiers(path_or_repo: str | os.PathLike, revision: str | None = None) -> list[str] | None:
    """The puzzle-identifier names of a model (``identifiers.json``), or None when it has none."""
    path = resolve(path_or_repo, revision) / IDENTIFIERS_FILE
    if not path.is_file():
        return None
    return _read_identifiers(path)


def _read_identifiers(path: Path) -> list[str]:
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HrmMlxError(f"{path}: unreadable identifiers ({_one_line(error)})") from None
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
                       r"|identifiers\.json)$")


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


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(model, config: dict, folder: str | os.PathLike, *, identifiers: list[str] | None = None,
         max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE, dtype: str | None = None) -> Path:
    """Write a model folder atomically: everything goes into a temporary sibling folder that is renamed into
    place at the end, so an interruption never leaves a half-written model at ``folder``. An existing model
    folder there is replaced; any other existing folder is refused.

    config.json = ``config`` with the model's own arguments (``model.args``) filled in. ``dtype`` casts every
    floating weight (float32, bfloat16, float16); None keeps each weight's dtype. Returns the folder."""
    folder = Path(folder).expanduser().absolute()
    max_bytes = parse_size(max_shard_size)
    args = getattr(model, "args", None)
    fields = dataclasses.asdict(args) if args is not None and dataclasses.is_dataclass(args) else {}
    # family first, then the model's own arguments (they win over the given config), then the rest (task, ...)
    config = {"family": config.get("family", "hrm"), **config, **fields}
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

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        shards = _shards(weights, max_bytes)
        written = []
        if len(shards) == 1:
            written.append(tmp / WEIGHTS_FILE)
            mx.save_safetensors(str(written[0]), weights, metadata={"format": "mlx"})
        else:
            weight_map = {}
            for i, names in enumerate(shards, 1):
                fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
                mx.save_safetensors(str(tmp / fname), {k: weights[k] for k in names}, metadata={"format": "mlx"})
                written.append(tmp / fname)
                weight_map.update({k: fname for k in names})
            index = {"metadata": {"total_size": sum(w.nbytes for w in weights.values())}, "weight_map": weight_map}
            (tmp / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
            written.append(tmp / INDEX_FILE)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        written.append(tmp / CONFIG_FILE)
        if identifiers is not None:
            (tmp / IDENTIFIERS_FILE).write_text(json.dumps(identifiers) + "\n")
            written.append(tmp / IDENTIFIERS_FILE)
        for path in written:
            _fsync(path)
        os.chmod(tmp, 0o755 & ~_umask())
        if folder.exists():
            _check_replaceable(folder)
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
            os.replace(folder, old / "model")
            try:
                os.replace(tmp, folder)
            except BaseException:
                os.replace(old / "model", folder)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
        _fsync(folder.parent)
    except OSError as error:
        raise HrmMlxError(f"{folder}: cannot write the model ({_one_line(error)})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------------------------- converting


def _read_config_file(path: Path) -> dict:
    """A JSON or YAML file (all_config.yaml, an arch yaml, a config.json)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise HrmMlxError(f"{path}: cannot read ({_one_line(error)})") from None
    if path.suffix.lower() == ".json":
        data = _json(text, path)
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise HrmMlxError(f"{path}: invalid YAML ({_one_line(error)})") from None
    if not isinstance(data, dict):
        raise HrmMlxError(f"{path}: expected a mapping of config fields")
    return data


def _config_source(config: str | os.PathLike | dict | None) -> tuple[dict, str]:
    """--config: a dict, a JSON/YAML file, or a recipe name. Returns (data, description)."""
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
    raise HrmMlxError(f"--config {config}: no such file, nor a recipe name ({', '.join(recipes.names())})")


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
    raise HrmMlxError(f"{where}: unsupported architecture {name!r} (hrm-mlx converts HRM checkpoints)")


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
    name = os.path.basename(str(data_path).rstrip("/")).lower()
    if "sudoku" in name:
        return "sudoku"
    if "maze" in name:
        return "maze"
    if re.search(r"(^|[^a-z])arc([^a-z]|$)", name):
        return "arc"
    return None


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
    if task_name is None and (task_name := TASK_BY_VOCAB.get(config.get("vocab_size"))):
        notes.append(f"task {task_name} from vocab_size {config['vocab_size']}")
    if task_name is not None and task_name not in TASKS:
        raise HrmMlxError(f"{where}: unknown task {task_name!r}; known: {', '.join(TASKS)}")

    # The sequence length: learned positions, flag, config, task.
    pos = weights.get("embed_pos.weight")
    if pos is not None and pos.ndim == 2 and "hidden_size" in config:
        ndim, hidden = config.get("puzzle_emb_ndim", 0), config["hidden_size"]
        # rows minus the puzzle-embedding positions (TRM sets their number; 0 or HRM: ceil(ndim / hidden))
        prefix = config.get("puzzle_emb_len", defaults.get("puzzle_emb_len", 0)) or -(ndim // -hidden)
        inferred = int(pos.shape[0]) - prefix
        if seq_len_flag is not None and seq_len_flag != inferred:
            raise HrmMlxError(f"{where}: --seq-len {seq_len_flag} contradicts the learned position table "
                              f"embed_pos.weight {_shape(pos.shape)} (seq_len {inferred})")
        config["seq_len"] = inferred
    elif seq_len_flag is not None:
        config["seq_len"] = seq_len_flag
    elif "seq_len" not in config and task_name is not None:
        config["seq_len"] = TASKS[task_name]
        notes.append(f"seq_len {config['seq_len']} from the task {task_name}")

    if task_name is not None:
        seq = config.get("seq_len")
        side = math.isqrt(seq) if isinstance(seq, int) and seq > 0 else 0
        fits = seq == TASKS[task_name] if task_name == "sudoku" else side * side == seq
        if fits:
            task_block = dict(task) if isinstance(task, dict) and task.get("name") == task_name else {"name": task_name}
            if task_name in CANVAS_TASKS:
                task_block.setdefault("canvas", side)
            config["task"] = task_block
        elif task_flag:
            raise HrmMlxError(f"{where}: --task {task_name} needs seq_len {TASKS[task_name]}, not {seq}")
        else:
            notes.append(f"no task: seq_len {seq} does not fit {task_name}")
    return config


def _missing_help(missing: list[str], where: str, has_config: bool) -> HrmMlxError:
    fields = ", ".join(missing)
    if missing == ["seq_len"]:
        return HrmMlxError(f"{where}: cannot tell seq_len (no learned positions, no task); pass --seq-len or --task")
    if has_config:
        return HrmMlxError(f"{where}: the config lacks {fields}")
    return HrmMlxError(f"{where}: no {OFFICIAL_CONFIG} beside the checkpoint, so {fields} are unknown; pass "
                       "--config FILE (an all_config.yaml, or a JSON/YAML with the arch fields, or a recipe name)")


def convert(src: str | os.PathLike, out: str | os.PathLike, *, dtype: str | None = None,
            config: str | os.PathLike | dict | None = None, task: str | None = None, seq_len: int | None = None,
            identifiers: str | os.PathLike | None = None, revision: str | None = None,
            max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE, repo: str | None = None) -> dict:
    """Convert an official checkpoint (folder, file or Hub repo id) — or re-save a model folder with another
    dtype or shard size — into the model folder ``out``. Returns a summary: source, output, family, task,
    params, trainable_params, dtypes, bytes, files, notes (what was inferred)."""
    if dtype is not None and dtype not in DTYPES:
        raise HrmMlxError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if task is not None and task not in TASKS:
        raise HrmMlxError(f"--task must be one of {', '.join(TASKS)}, not {task!r}")
    if seq_len is not None and seq_len <= 0:
        raise HrmMlxError(f"--seq-len must be positive, not {seq_len}")
    if repo is None:
        source, repo = _locate(src, revision)
    else:
        source = Path(src)
    names = list(_read_identifiers(Path(identifiers).expanduser())) if identifiers else None
    notes: list[str] = []

    if _is_model_folder(source):
        model, cfg = _load_folder(source)
        if names is None and (source / IDENTIFIERS_FILE).is_file():
            names = _read_identifiers(source / IDENTIFIERS_FILE)
        notes.append("re-saved a model folder")
    else:
        model, cfg = _convert_official(source, repo, config, task, seq_len, notes, names)
        if names is None:
            beside = (source if source.is_dir() else source.parent) / IDENTIFIERS_FILE
            if beside.is_file():
                names = _read_identifiers(beside)
                notes.append(f"puzzle identifiers from {beside}")
    folder = save(model, cfg, out, identifiers=names, max_shard_size=max_shard_size, dtype=dtype)
    return _summary(repo or str(source.absolute()), folder, model, notes)


def _convert_official(source: Path, repo: str | None, config, task_flag, seq_len_flag, notes, names):
    from hrm_mlx.torch_checkpoint import read_torch_checkpoint

    checkpoint = third_party.locate(source)
    what = f"Hugging Face repo {repo}" if repo else str(source)
    if checkpoint is None:
        raise HrmMlxError(f"{what}: neither a model folder ({CONFIG_FILE}) nor a checkpoint ({OFFICIAL_CHECKPOINT}, "
                          f"step_<N> or *{third_party.LIGHTNING_SUFFIX} file)")
    where = repo or str(checkpoint)
    loaded = read_torch_checkpoint(checkpoint)
    if third_party.is_lightning(loaded.extras):
        if config is not None:
            raise HrmMlxError(f"{where}: --config is not used: a Lightning checkpoint carries its hyper-parameters")
        flat, weights, stored = third_party.nano_trm(loaded.arrays, loaded.dtypes, loaded.extras, where, notes)
        data_path, task, described = None, None, None
        module = _family_module(flat["family"], where)
        notes.append(f"nano-trm checkpoint {checkpoint.name} (Lightning {loaded.extras.get('pytorch-lightning_version', '?')})")
    else:
        # The architecture: --config, else all_config.yaml beside the checkpoint, else a known repo's recipe.
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
        module = _family_module(flat["family"], described or where)
        arrays = loaded.arrays
        by_identity = {id(a): loaded.dtypes[k] for k, a in arrays.items()}  # sanitize() renames, may transform
        weights = module.Model.sanitize(arrays)
        stored = {k: by_identity.get(id(w), "float32") for k, w in weights.items()}
        del arrays, by_identity
    del loaded

    defaults = {f.name: f.default for f in dataclasses.fields(module.ModelArgs)}
    cfg = _infer(flat, weights, data_path, task, task_flag=task_flag, seq_len_flag=seq_len_flag, defaults=defaults,
                 notes=notes, where=where)
    missing = [f.name for f in dataclasses.fields(module.ModelArgs)
               if f.default is dataclasses.MISSING and f.name not in cfg]
    if missing:
        raise _missing_help(missing, described or where, described is not None)
    known = {f.name for f in dataclasses.fields(module.ModelArgs)}
    cfg = {"family": cfg["family"], **{k: v for k, v in cfg.items() if k in known},
           **({"task": cfg["task"]} if "task" in cfg else {})}
    validate_config(cfg, described or where)
    model = _build(cfg, described or where)

    mlx_weights = {}
    for k in list(weights):
        w = weights.pop(k)
        if w.dtype.kind == "f":
            target = {"bfloat16": mx.bfloat16, "float16": mx.float16}.get(stored.get(k), mx.float32)
            mlx_weights[k] = mx.array(w.astype(np.float32, copy=False)).astype(target)
        else:
            mlx_weights[k] = mx.array(w)
        mx.eval(mlx_weights[k])
    _check_weights(model, mlx_weights, where)
    model.update(tree_unflatten(list(mlx_weights.items())))
    if names is not None and len(names) != cfg["num_puzzle_identifiers"]:
        raise HrmMlxError(f"{len(names)} puzzle identifiers for a checkpoint with {cfg['num_puzzle_identifiers']} "
                          "puzzle embeddings")
    return model, cfg


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
    for path in _weight_files(folder)[0]:
        found |= {_DTYPE_NAMES.get(d, d) for d, _ in _check_safetensors(path).values()}
    return sorted(found)
