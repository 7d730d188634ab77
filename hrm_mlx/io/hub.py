"""Where a model comes from: a model folder, an official checkpoint (converted once into hrm-mlx's cache) or a
Hugging Face Hub repo (fetched into the Hugging Face cache, converted once when in the official format)."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.io import conversion, third_party
from hrm_mlx.io.conversion import OFFICIAL_CHECKPOINT, OFFICIAL_CONFIG
from hrm_mlx.io.folders import (CONFIG_FILE, IDENTIFIERS_FILE, INDEX_FILE, RUN_MODEL, is_model_folder, is_run_folder,
                                load_folder, one_line, read_identifiers)

# The files fetched from a Hub repo: ours or another trainer's layout, whichever the repo holds.
HUB_FILES = [CONFIG_FILE, "model*.safetensors", INDEX_FILE, IDENTIFIERS_FILE, *third_party.HUB_PATTERNS]

log = logging.getLogger(__name__)  # the library reports through logging; the command line shows it
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


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
        raise HrmMlxError(f"{repo}: download from the Hugging Face Hub failed ({name}: {one_line(error)})") from None
    return Path(path)


def locate(path_or_repo: str | os.PathLike, revision: str | None) -> tuple[Path, str | None]:
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
    source, repo = locate(path_or_repo, revision)
    if is_run_folder(source):
        model = source / RUN_MODEL
        if not is_model_folder(model):
            raise HrmMlxError(f"{source} is a training run without a model yet: its {RUN_MODEL}/ folder is written "
                              "when the run ends, is interrupted (Ctrl-C) or reaches its time limit")
        log.info("%s is a training run: using its model %s", source, model)
        return model
    if is_model_folder(source):
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
    if is_model_folder(target):
        return target
    log.info("converting the checkpoint %s once, into %s", repo or checkpoint, target)
    conversion.convert(source, target, repo=repo)
    return target


def load(path_or_repo: str | os.PathLike, revision: str | None = None):
    """Load ``(model, config)`` from a model folder, an official checkpoint or a Hugging Face repo id (see the
    module docstring). The weights keep their stored dtype. Raises HrmMlxError with a one-line message for
    anything wrong with the input."""
    return load_folder(resolve(path_or_repo, revision))


def load_identifiers(path_or_repo: str | os.PathLike, revision: str | None = None) -> list[str] | None:
    """The puzzle-identifier names of a model (``identifiers.json``), or None when it has none."""
    path = resolve(path_or_repo, revision) / IDENTIFIERS_FILE
    if not path.is_file():
        return None
    return read_identifiers(path)
