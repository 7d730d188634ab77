"""Read PyTorch checkpoints (``torch.save`` files) into numpy arrays, safely and without torch.

Two file layouts are understood:

* the zip layout that ``torch.save`` writes since torch 1.6: ``<archive>/data.pkl`` (the pickled object, in
  which every tensor refers to a storage by key), ``<archive>/data/<key>`` (raw storage bytes) and
  ``<archive>/byteorder`` ("little" or "big"; little when absent, as in files from old torch versions);
* the legacy layout (``_use_new_zipfile_serialization=False``, torch < 1.6): a magic-number pickle, a protocol
  version, a system-info dict, the object pickle, a pickled list of storage keys, then each storage as an
  8-byte element count followed by its bytes. (The even older tar layout of torch <= 0.1 is refused.)

Safety: the pickle is read by an unpickler whose ``find_class`` resolves only the handful of globals a plain
state dict uses (tensor/parameter rebuild functions, storage classes, dtypes, ``collections.OrderedDict`` and a
few builtins) plus ``pathlib`` paths (a Lightning checkpoint's hyper-parameters may hold one; they become plain
strings), each mapped to an implementation in this module. torch is never imported, and any other global
(``os.system``, ``builtins.eval``, model classes, numpy internals, ...) raises :class:`HrmMlxError` before
anything is called. Rebuilt tensors are first placeholders; their bytes are read and bounds-checked afterwards.

Result: a flat ``{name: np.ndarray}`` dict. Every array is a fresh, C-contiguous copy in native byte order, so
views that shared a storage in the checkpoint become independent arrays. Dtypes map to their numpy namesake,
except bfloat16, which numpy lacks: it is returned as float32 (exact: the bf16 bits are the high half of the
float32 bits). ``return_dtypes=True`` also returns ``{name: torch dtype name}`` (e.g. ``"bfloat16"``) so callers
can tell an upcast bf16 from a genuine float32.

Which dict is returned:

* Wrappers are unwrapped: while the object is a dict without tensors at its top level, and it has one of the
  keys ``state_dict``, ``model_state_dict``, ``model``, ``module`` (tried in that order) holding a dict, that dict
  is used instead, so ``{"model": sd, "optimizer": ..., "epoch": 3}`` yields ``sd`` and the rest is ignored.
* The chosen dict is flattened: nested dicts become dotted names (``{"enc": {"w": t}}`` -> ``"enc.w"``) and
  values that are neither tensors nor dicts (numbers, strings, lists, ...) are skipped.
* Names are kept exactly as saved (a ``torch.compile`` prefix such as ``_orig_mod.`` is not stripped here).

``read_torch_checkpoint`` also returns the top level's other entries as plain Python values (a Lightning
checkpoint's ``hyper_parameters`` and ``pytorch-lightning_version``, an epoch number, ...): dicts, lists, strings,
numbers, booleans and None, with dtypes as their names and paths as strings; tensors and anything else left out.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal, overload

import numpy as np

from hrm_mlx.errors import HrmMlxError

__all__ = ["load_torch_checkpoint", "read_torch_checkpoint", "TorchCheckpoint"]

# torch dtype name -> numpy dtype of the raw storage elements. bfloat16 is read as its raw 16-bit patterns.
_NUMPY_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(np_name)
    for name, np_name in {
        "float64": "f8", "float32": "f4", "float16": "f2", "bfloat16": "u2",
        "int64": "i8", "int32": "i4", "int16": "i2", "int8": "i1",
        "uint64": "u8", "uint32": "u4", "uint16": "u2", "uint8": "u1", "bool": "?",
        "complex128": "c16", "complex64": "c8",
    }.items()
}

# Legacy typed-storage classes (pickled as ``torch.<Name>``) and the dtype of their elements.
_STORAGE_CLASSES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexDoubleStorage": "complex128", "ComplexFloatStorage": "complex64",
}

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module")

# Errors that a truncated or corrupted pickle can provoke inside the unpickler or our rebuild functions.
_PICKLE_ERRORS = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
    OverflowError, RecursionError, MemoryError, struct.error,
)


class _RefusedGlobal(HrmMlxError):
    """The pickle names a global outside the allow-list (kept distinct so callers can tell it from corruption)."""


class _Inert:
    """Base of the placeholder objects handed to the pickle: the BUILD opcode must not be able to alter them."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"unexpected state for a {type(self).__name__.lstrip('_')}")


class _StorageType(_Inert):
    """Stands in for ``torch.FloatStorage`` etc. (and ``torch.UntypedStorage``, whose elements are bytes)."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: str) -> None:
        object.__setattr__(self, "dtype", dtype)


class _Dtype(_Inert):
    """Stands in for a ``torch.<dtype>`` object (the explicit dtype argument of ``_rebuild_tensor_v3``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "name", name)


class _Storage(_Inert):
    """A storage reference from the pickle: record ``key`` holding ``numel`` elements of ``dtype``."""

    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key: str, dtype: str, numel: int) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "numel", numel)


class _Tensor(_Inert):
    """A tensor to materialise once the storages are readable: a strided view of ``storage`` read as ``dtype``."""

    __slots__ = ("storage", "dtype", "offset", "shape", "strides")

    def __init__(self, storage: _Storage, dtype: str, offset: int, shape: tuple, strides: tuple) -> None:
        for name, value in (("storage", storage), ("dtype", dtype), ("offset", offset),
                            ("shape", shape), ("strides", strides)):
            object.__setattr__(self, name, value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored) -> _Tensor:
    """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])``.

    requires_grad, backward hooks and metadata do not matter for plain arrays and are ignored."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("tensor record without a storage")
    return _make_tensor(storage, storage.dtype, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, hooks, dtype, *_ignored) -> _Tensor:
    """``torch._utils._rebuild_tensor_v3``: newer dtypes over an untyped (byte) storage; offset and strides count
    elements of ``dtype``."""
    if not isinstance(storage, _Storage) or not isinstance(dtype, _Dtype):
        raise pickle.UnpicklingError("malformed tensor record")
    itemsize = _NUMPY_DTYPES[dtype.name].itemsize
    if storage.dtype != "uint8" or storage.numel % itemsize:
        raise pickle.UnpicklingError("malformed tensor record")
    retyped = _Storage(storage.key, dtype.name, storage.numel // itemsize)
    return _make_tensor(retyped, dtype.name, storage_offset, size, stride)


def _make_tensor(storage: _Storage, dtype: str, offset: Any, size: Any, stride: Any) -> _Tensor:
    if not (_is_int(offset) and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) and all(map(_is_int, size + stride))):
        raise pickle.UnpicklingError("malformed tensor record")
    return _Tensor(storage, dtype, offset, size, stride)


def _rebuild_parameter(data, requires_grad=None, backward_hooks=None, *_ignored) -> _Tensor:
    """``torch._utils._rebuild_parameter`` (and ``_with_state``): an nn.Parameter is just its tensor here."""
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError("parameter record without a tensor")
    return data


def _codecs_encode(text, encoding="utf-8", *_ignored) -> bytes:
    """``_codecs.encode``, which protocol-2 pickles use to rebuild ``bytes`` values; only latin-1 is needed."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return text.encode("latin-1")


def _posix_path(*parts) -> str:
    """``pathlib.PosixPath(*parts)`` as a plain string (pickled paths rebuild from their parts)."""
    if not all(isinstance(part, str) for part in parts):
        raise pickle.UnpicklingError("unexpected path parts")
    return str(PurePosixPath(*parts))


def _windows_path(*parts) -> str:
    if not all(isinstance(part, str) for part in parts):
        raise pickle.UnpicklingError("unexpected path parts")
    return str(PureWindowsPath(*parts))


_PATH_CLASSES = {"PosixPath": _posix_path, "PurePosixPath": _posix_path, "WindowsPath": _windows_path,
                 "PureWindowsPath": _windows_path}

# Every global the pickle may name, mapped to what it resolves to. Nothing outside this table is ever resolved.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor_v2,  # torch < 1.0; same leading arguments
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "UntypedStorage"): _StorageType("uint8"),
    ("torch.storage", "UntypedStorage"): _StorageType("uint8"),
    **{("torch", cls): _StorageType(dtype) for cls, dtype in _STORAGE_CLASSES.items()},
    **{("torch", name): _Dtype(name) for name in _NUMPY_DTYPES},
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs_encode,
    # pathlib's classes live in pathlib._local since Python 3.13
    **{(module, name): rebuild for module in ("pathlib", "pathlib._local") for name, rebuild in _PATH_CLASSES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, where: str, storages: dict[str, _Storage]) -> None:
        super().__init__(file, encoding="utf-8")
        self._where = where
        self._storages = storages  # every storage referenced so far, by key (shared across tensors)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            pass
        if module == "torch" and name.startswith(("float8", "float4", "complex32", "bits", "qint", "quint")):
            raise HrmMlxError(f"{self._where}: tensor dtype torch.{name} is not supported")
        raise _RefusedGlobal(
            f"{self._where}: refuses to load {module}.{name} from the checkpoint pickle "
            "(only plain tensor state dicts are supported; nothing was executed)"
        )

    def persistent_load(self, pid: Any) -> _Storage:
        # zip layout: ("storage", type, key, location, numel); legacy adds view_metadata (always None since 1.0).
        if not isinstance(pid, tuple) or len(pid) not in (5, 6):
            raise pickle.UnpicklingError("unknown persistent id")
        kind, storage_type, key, _location, numel = pid[:5]
        if isinstance(kind, bytes):  # Python 2 pickles
            kind = kind.decode("ascii")
        if kind != "storage" or not isinstance(storage_type, _StorageType) or not _is_int(numel) or numel < 0:
            raise pickle.UnpicklingError("unknown persistent id")
        if len(pid) == 6 and pid[5] is not None:
            raise HrmMlxError(f"{self._where}: storage views of the pre-1.0 legacy format are not supported")
        key = str(key)
        known = self._storages.get(key)
        if known is None:
            known = self._storages[key] = _Storage(key, storage_type.dtype, numel)
        elif (known.dtype, known.numel) != (storage_type.dtype, numel):
            raise pickle.UnpicklingError(f"storage {key} referenced with different types or sizes")
        return known


def _unpickle(data: io.BytesIO, where: str, storages: dict[str, _Storage]) -> Any:
    try:
        return _RestrictedUnpickler(data, where, storages).load()
    except HrmMlxError:
        raise
    except _PICKLE_ERRORS as exc:
        raise HrmMlxError(f"{where}: corrupted checkpoint pickle ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no details"
    return f"{type(exc).__name__}: {text}"


# --------------------------------------------------------------------------------------------------- layouts


def _load_zip(path: Path, where: str) -> tuple[Any, dict[str, _Tensor], dict[str, bytes], str]:
    """Unpickle ``data.pkl``, select its tensors and read their storages: (top-level object, tensors, storage
    bytes, byteorder)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
            if len(pickles) != 1:
                if any(n.endswith("/constants.pkl") for n in names):
                    raise HrmMlxError(f"{where}: a TorchScript archive, not a torch.save checkpoint")
                raise HrmMlxError(f"{where}: zip archive without a single <archive>/data.pkl; not a torch.save checkpoint")
            prefix = pickles[0][: -len("data.pkl")]
            storages: dict[str, _Storage] = {}
            top = _unpickle(io.BytesIO(archive.read(pickles[0])), where, storages)
            tensors = _select_tensors(top, where)

            byteorder = "little"
            if prefix + "byteorder" in names:
                byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()

            raw: dict[str, bytes] = {}
            for storage in {t.storage.key: t.storage for t in tensors.values()}.values():  # skip e.g. optimizer state
                key = storage.key
                name = f"{prefix}data/{key}"
                expected = storage.numel * _NUMPY_DTYPES[storage.dtype].itemsize
                try:
                    info = archive.getinfo(name)
                except KeyError:
                    raise HrmMlxError(f"{where}: storage record {name} is missing") from None
                # Compare sizes before reading, so a forged record cannot make us inflate a huge stream.
                if info.file_size != expected:
                    raise HrmMlxError(f"{where}: storage record {name} holds {info.file_size} bytes, expected {expected}")
                raw[key] = archive.read(info)
    except zipfile.BadZipFile as exc:  # also raised for CRC mismatches of corrupted records
        raise HrmMlxError(f"{where}: truncated or corrupted zip archive ({_one_line(exc)})") from None
    except (EOFError, OSError, zlib.error, zipfile.LargeZipFile, NotImplementedError) as exc:
        raise HrmMlxError(f"{where}: unreadable zip archive ({_one_line(exc)})") from None
    return top, tensors, raw, byteorder


def _load_legacy(path: Path, where: str) -> tuple[Any, dict[str, _Tensor], dict[str, bytes], str]:
    """The pre-1.6 layout: a sequence of pickles, then the storages back to back."""
    stream = io.BytesIO(path.read_bytes())
    storages: dict[str, _Storage] = {}
    header_error = HrmMlxError(f"{where}: not a PyTorch checkpoint (bad legacy torch.save header)")
    try:
        magic = _unpickle(stream, where, storages)
    except _RefusedGlobal:
        raise
    except HrmMlxError:  # garbage that merely starts like a pickle is "not a checkpoint", not corruption
        raise header_error from None
    if magic != _LEGACY_MAGIC:
        raise header_error
    if _unpickle(stream, where, storages) != _LEGACY_PROTOCOL:
        raise HrmMlxError(f"{where}: unsupported legacy torch.save protocol version")
    sys_info = _unpickle(stream, where, storages)
    little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
    top = _unpickle(stream, where, storages)
    tensors = _select_tensors(top, where)
    keys = _unpickle(stream, where, storages)
    if not isinstance(keys, list):
        raise HrmMlxError(f"{where}: corrupted legacy checkpoint (storage key list missing)")

    byteorder = "little" if little else "big"
    raw: dict[str, bytes] = {}
    for key in map(str, keys):
        storage = storages.get(key)
        header = stream.read(8)
        if storage is None or len(header) != 8:
            raise HrmMlxError(f"{where}: corrupted legacy checkpoint (storage {key} is unknown or truncated)")
        numel = int.from_bytes(header, byteorder)
        nbytes = numel * _NUMPY_DTYPES[storage.dtype].itemsize
        data = stream.read(nbytes)
        if numel != storage.numel or len(data) != nbytes:
            raise HrmMlxError(f"{where}: corrupted legacy checkpoint (storage {key} is truncated or mis-sized)")
        raw[key] = data
    return top, tensors, raw, byteorder


# --------------------------------------------------------------------------------------------- materialising


def _materialise(tensor: _Tensor, raw: dict[str, bytes], byteorder: str, where: str, name: str) -> np.ndarray:
    storage = tensor.storage
    if storage.key not in raw:  # only possible in a legacy file whose storage key list is incomplete
        raise HrmMlxError(f"{where}: storage {storage.key} of tensor {name!r} is missing")
    order = "<" if byteorder == "little" else ">"
    elements = np.frombuffer(raw[storage.key], dtype=_NUMPY_DTYPES[tensor.dtype].newbyteorder(order))
    shape, strides, offset = tensor.shape, tensor.strides, tensor.offset

    # as_strided trusts its arguments, so prove the view stays inside the storage before creating it.
    if min(shape, default=1) < 0 or min(strides, default=0) < 0 or offset < 0:
        raise HrmMlxError(f"{where}: tensor {name!r} has a negative size, stride or offset")
    if all(shape):  # an empty tensor touches no elements
        last = offset + sum((n - 1) * s for n, s in zip(shape, strides))
        if last >= len(elements):
            raise HrmMlxError(f"{where}: tensor {name!r} reaches past the end of its storage")
    else:
        offset = 0
    itemsize = elements.itemsize
    try:
        view = np.lib.stride_tricks.as_strided(
            elements[offset:], shape=shape, strides=[s * itemsize for s in strides], writeable=False
        )
        # One copy: contiguous, native byte order, and independent of storages shared with other tensors.
        array = np.array(view, dtype=view.dtype.newbyteorder("="), order="C", copy=True)
    except (MemoryError, ValueError) as exc:
        raise HrmMlxError(f"{where}: tensor {name!r} cannot be allocated ({_one_line(exc)})") from None
    if tensor.dtype == "bfloat16":
        # bf16 is the upper half of a float32: widening the bits and shifting is an exact conversion.
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _select_tensors(obj: Any, where: str) -> dict[str, _Tensor]:
    """Unwrap and flatten the unpickled object as the module docstring describes."""
    if not isinstance(obj, Mapping):
        raise HrmMlxError(f"{where}: the checkpoint holds a {type(obj).__name__}, not a dict of tensors")
    seen = {id(obj)}  # a pickle can build cyclic dicts; never follow one twice
    while not any(isinstance(v, _Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None or id(inner) in seen:
            break
        seen.add(id(inner))
        obj = inner
    tensors: dict[str, _Tensor] = {}
    try:
        _flatten(obj, "", tensors, where, set())
    except RecursionError:
        raise HrmMlxError(f"{where}: the checkpoint's dicts are nested too deeply") from None
    if not tensors:
        raise HrmMlxError(f"{where}: the checkpoint contains no tensors")
    return tensors


def _flatten(obj: Mapping, prefix: str, out: dict[str, _Tensor], where: str, visited: set[int]) -> None:
    # The pickle memo lets one dict object appear many times (even inside itself); walking it once per
    # appearance could loop forever or blow up exponentially, and a real state dict never repeats one.
    if id(obj) in visited:
        raise HrmMlxError(f"{where}: the same dict object appears more than once in the checkpoint")
    visited.add(id(obj))
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(value, name + ".", out, where, visited)
        elif isinstance(value, _Tensor):
            if name in out:
                raise HrmMlxError(f"{where}: tensor name {name!r} occurs twice after flattening nested dicts")
            out[name] = value


def _plain(value: Any, depth: int = 0) -> Any:
    """A pickled value as plain Python (see the module docstring), or _LEFT_OUT."""
    if depth > 20:
        return _LEFT_OUT
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, _Dtype):
        return value.name
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            item = _plain(item, depth + 1)
            if isinstance(key, (str, int)) and item is not _LEFT_OUT:
                out[key] = item
        return out
    if isinstance(value, (list, tuple)):
        return [item for item in (_plain(v, depth + 1) for v in value) if item is not _LEFT_OUT]
    return _LEFT_OUT


_LEFT_OUT = object()


@dataclass
class TorchCheckpoint:
    """What ``read_torch_checkpoint`` returns: the tensors (as ``load_torch_checkpoint`` selects them), their torch
    dtype names, and the top level's other entries as plain Python values."""

    arrays: dict[str, np.ndarray]
    dtypes: dict[str, str]
    extras: dict[str, Any]


def read_torch_checkpoint(path: str | Path) -> TorchCheckpoint:
    """Load a ``torch.save`` checkpoint without importing torch: its tensors (as ``load_torch_checkpoint`` with
    ``return_dtypes=True``) and the other entries of its top-level dict as plain values. Raises
    :class:`HrmMlxError` for a missing, truncated, corrupted or unsafe file."""
    path = Path(path)
    where = str(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise HrmMlxError(f"{where}: cannot read checkpoint ({exc.strerror or _one_line(exc)})") from None

    if head.startswith(b"PK"):
        top, tensors, raw, byteorder = _load_zip(path, where)
    elif head.startswith(b"\x80"):  # a binary pickle: the legacy layout starts with the pickled magic number
        top, tensors, raw, byteorder = _load_legacy(path, where)
    else:
        raise HrmMlxError(f"{where}: not a PyTorch checkpoint (neither a torch.save zip archive nor a legacy pickle)")
    if byteorder not in ("little", "big"):
        raise HrmMlxError(f"{where}: unknown byte order {byteorder!r} in checkpoint")

    arrays = {name: _materialise(t, raw, byteorder, where, name) for name, t in tensors.items()}
    extras = {k: v for k, v in _plain(top).items() if not (isinstance(top[k], Mapping) and v == {})}
    return TorchCheckpoint(arrays, {name: t.dtype for name, t in tensors.items()}, extras)


@overload
def load_torch_checkpoint(path: str | Path, *, return_dtypes: Literal[False] = ...) -> dict[str, np.ndarray]: ...
@overload
def load_torch_checkpoint(
    path: str | Path, *, return_dtypes: Literal[True]
) -> tuple[dict[str, np.ndarray], dict[str, str]]: ...


def load_torch_checkpoint(path, *, return_dtypes=False):
    """Load the tensors of a ``torch.save`` checkpoint as ``{name: np.ndarray}`` without importing torch.

    See the module docstring for the supported layouts, the unwrapping/flattening rules and the bfloat16 ->
    float32 upcast. With ``return_dtypes=True`` returns ``(arrays, dtypes)``, where ``dtypes[name]`` is the
    tensor's torch dtype name ("float32", "bfloat16", "int64", ...). Raises :class:`HrmMlxError` for a missing,
    truncated, corrupted or unsafe file.
    """
    checkpoint = read_torch_checkpoint(path)
    if return_dtypes:
        return checkpoint.arrays, checkpoint.dtypes
    return checkpoint.arrays
