"""Tests for hrm_mlx.io.torch_checkpoint. Fixtures come from tools/make_torch_checkpoint_fixtures.py (run with torch);
the tests themselves never need torch. Hostile and odd files are built here, byte by byte."""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.io.torch_checkpoint import load_torch_checkpoint

FIXTURES = Path(__file__).parent / "fixtures" / "torch_checkpoint"
EXPECTED_DTYPES = json.loads((FIXTURES / "expected_dtypes.json").read_text())


def assert_same(actual: dict[str, np.ndarray], expected_npz: Path) -> None:
    """Same names in the same order, and bit-identical arrays (so NaN, -0.0 and subnormals count)."""
    with np.load(expected_npz) as expected:
        assert list(actual) == list(expected.files)
        for name, want in expected.items():
            got = actual[name]
            assert (got.dtype, got.shape) == (want.dtype, want.shape), name
            assert got.tobytes() == want.tobytes(), name
            assert got.flags.c_contiguous and got.flags.writeable, name


@pytest.mark.parametrize("name", ["mixed", "module_params", "wrapped", "legacy"])
def test_fixture_matches_torch(name):
    arrays, dtypes = load_torch_checkpoint(FIXTURES / f"{name}.pt", return_dtypes=True)
    assert_same(arrays, FIXTURES / f"{name}.expected.npz")
    assert dtypes == EXPECTED_DTYPES[name]
    assert list(load_torch_checkpoint(FIXTURES / f"{name}.pt")) == list(arrays)  # default: arrays only


def test_mixed_details():
    arrays, dtypes = load_torch_checkpoint(str(FIXTURES / "mixed.pt"), return_dtypes=True)
    assert dtypes["bf16"] == "bfloat16" and arrays["bf16"].dtype == np.float32
    assert arrays["scalar"].shape == () and arrays["scalar"] == 3.5
    assert arrays["base_elem"].shape == () and arrays["base_elem"] == 15.0
    assert arrays["empty"].shape == (0, 3)
    np.testing.assert_array_equal(arrays["base_t"], arrays["base"].T)
    np.testing.assert_array_equal(arrays["base_slice"], arrays["base"][1:3, 2:5])
    arrays["base"][0, 0] = -1  # views that shared a storage in the file are independent arrays here
    assert arrays["base_t"][0, 0] == 0
    special = arrays["bf16_special"]
    assert np.signbit(special[1]) and np.isinf(special[4:6]).all() and np.isnan(special[6])


def test_prefixed_keys_and_wrapper_unwrapping():
    params = load_torch_checkpoint(FIXTURES / "module_params.pt")
    assert all(k.startswith("_orig_mod.model.inner.") for k in params)
    wrapped = load_torch_checkpoint(FIXTURES / "wrapped.pt")  # {"model": ..., "optimizer": ..., "epoch": 3}
    assert list(wrapped) == list(params)


def test_unsupported_dtype_is_named():
    with pytest.raises(HrmMlxError, match="float8_e4m3fn is not supported"):
        load_torch_checkpoint(FIXTURES / "float8.pt")


# ------------------------------------------------------------------------------------ hand-built checkpoints


@dataclass(frozen=True)
class G:  # a global, written as the GLOBAL opcode
    module: str
    name: str


@dataclass(frozen=True)
class Call:  # func(*args), written as REDUCE
    func: object
    args: tuple


@dataclass(frozen=True)
class Pid:  # a persistent id, written as BINPERSID
    pid: tuple


def encode(obj) -> bytes:
    """Pickle opcodes for the few kinds of values these tests need, with any global we like."""
    if isinstance(obj, G):
        return b"c" + f"{obj.module}\n{obj.name}\n".encode()
    if isinstance(obj, Call):
        return encode(obj.func) + encode(tuple(obj.args)) + b"R"
    if isinstance(obj, Pid):
        return encode(obj.pid) + b"Q"
    if obj is None or isinstance(obj, (bool, float, str)):
        return pickle.dumps(obj, protocol=2)[2:-1]  # drop PROTO and STOP
    if isinstance(obj, int):
        return b"I" + str(obj).encode() + b"\n"
    if isinstance(obj, tuple):
        return b"(" + b"".join(map(encode, obj)) + b"t"
    if isinstance(obj, dict):
        return b"}(" + b"".join(encode(k) + encode(v) for k, v in obj.items()) + b"u"
    raise TypeError(obj)


def tensor(key: str, numel: int, offset: int, size: tuple, stride: tuple, storage: str = "FloatStorage") -> Call:
    pid = Pid(("storage", G("torch", storage), key, "cpu", numel))
    hooks = Call(G("collections", "OrderedDict"), ())
    return Call(G("torch._utils", "_rebuild_tensor_v2"), (pid, offset, size, stride, False, hooks))


def write_zip(path: Path, pickled: bytes, storages: dict[str, bytes] | None = None, byteorder: str = "little") -> Path:
    """Lay files out like torch.save does."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/byteorder", byteorder)
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", "3\n")
    return path


def write_checkpoint(path: Path, obj, storages: dict[str, bytes], byteorder: str = "little") -> Path:
    return write_zip(path, b"\x80\x02" + encode(obj) + b".", storages, byteorder)


def test_hand_built_checkpoint_with_nested_dicts(tmp_path):
    data = np.arange(6, dtype="<f4").tobytes()
    obj = {"enc": {"w": tensor("0", 6, 0, (2, 3), (3, 1)), "b": tensor("0", 6, 1, (2,), (3,))}, "step": 4}
    arrays = load_torch_checkpoint(write_checkpoint(tmp_path / "a.pt", obj, {"0": data}))
    assert list(arrays) == ["enc.w", "enc.b"]
    np.testing.assert_array_equal(arrays["enc.b"], [1.0, 4.0])


def test_big_endian_checkpoint(tmp_path):
    obj = {"f": tensor("0", 3, 0, (3,), (1,)), "i": tensor("1", 2, 0, (2,), (1,), "LongStorage"),
           "h": tensor("2", 1, 0, (), (), "BFloat16Storage")}
    storages = {"0": np.array([1.5, -2.0, 3.25], ">f4").tobytes(), "1": np.array([7, -(2**40)], ">i8").tobytes(),
                "2": np.array([0x3FC0], ">u2").tobytes()}  # bf16 1.5
    arrays = load_torch_checkpoint(write_checkpoint(tmp_path / "be.pt", obj, storages, byteorder="big"))
    np.testing.assert_array_equal(arrays["f"], [1.5, -2.0, 3.25])
    np.testing.assert_array_equal(arrays["i"], [7, -(2**40)])
    assert arrays["h"] == 1.5 and arrays["f"].dtype.isnative


@pytest.mark.parametrize(
    "offset, size, stride",
    [(5, (2,), (1,)), (0, (2, 3), (3, 2)), (6, (), ()), (-1, (1,), (1,)), (0, (2,), (-1,))],
)
def test_views_outside_storage_are_refused(tmp_path, offset, size, stride):
    path = write_checkpoint(tmp_path / "oob.pt", {"t": tensor("0", 6, offset, size, stride)}, {"0": bytes(24)})
    with pytest.raises(HrmMlxError, match="past the end|negative"):
        load_torch_checkpoint(path)


def test_storage_size_mismatch(tmp_path):
    path = write_checkpoint(tmp_path / "short.pt", {"t": tensor("0", 6, 0, (6,), (1,))}, {"0": bytes(20)})
    with pytest.raises(HrmMlxError, match="holds 20 bytes, expected 24"):
        load_torch_checkpoint(path)


def test_missing_storage_record(tmp_path):
    path = write_checkpoint(tmp_path / "missing.pt", {"t": tensor("0", 1, 0, (), ())}, {})
    with pytest.raises(HrmMlxError, match="missing"):
        load_torch_checkpoint(path)


def test_cyclic_dict_is_refused(tmp_path):
    # {"a": <the dict itself>}: EMPTY_DICT, BINPUT 9, "a", BINGET 9, SETITEM
    pickled = b"\x80\x02}q\x09" + encode("a") + b"h\x09s."
    with pytest.raises(HrmMlxError, match="more than once"):
        load_torch_checkpoint(write_zip(tmp_path / "cycle.pt", pickled))


def test_no_tensors(tmp_path):
    with pytest.raises(HrmMlxError, match="no tensors"):
        load_torch_checkpoint(write_checkpoint(tmp_path / "empty.pt", {"epoch": 3}, {}))
    with pytest.raises(HrmMlxError, match="holds a list"):
        load_torch_checkpoint(write_zip(tmp_path / "list.pt", pickle.dumps([1, 2], protocol=2)))


# ------------------------------------------------------------------------------------------ hostile pickles


class TouchFile:
    """Unpickling this with the plain pickle module would run ``touch <path>``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_reduce_payload_in_zip_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    pickled = pickle.dumps({"w": TouchFile(marker)}, protocol=2)
    path = write_zip(tmp_path / "evil.pt", pickled)
    with pytest.raises(HrmMlxError, match=r"refuses to load (posix|nt|os)\.system") as err:
        load_torch_checkpoint(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_reduce_payload_as_legacy_pickle_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_legacy.pt"
    path.write_bytes(pickle.dumps(TouchFile(marker), protocol=2))
    with pytest.raises(HrmMlxError, match="refuses to load"):
        load_torch_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "func",
    [G("builtins", "eval"), G("builtins", "exec"), G("builtins", "getattr"), G("subprocess", "Popen"),
     G("torch", "load"), G("numpy.core.multiarray", "_reconstruct"), G("copyreg", "_reconstructor"),
     G("__main__", "Model"), G("torch.nn.modules.linear", "Linear")],
)
def test_other_globals_are_refused(tmp_path, func):
    marker = tmp_path / "pwned"
    obj = {"ok": tensor("0", 1, 0, (), ()), "bad": Call(func, (f"open({str(marker)!r}, 'w')",))}
    path = write_checkpoint(tmp_path / "evil.pt", obj, {"0": bytes(4)})
    with pytest.raises(HrmMlxError, match=f"refuses to load {func.module}.{func.name}"):
        load_torch_checkpoint(path)
    assert not marker.exists()


def test_hostile_storage_type_is_refused(tmp_path):
    pid = Pid(("storage", G("os", "system"), "0", "cpu", 1))
    path = write_checkpoint(tmp_path / "evil.pt", {"t": pid}, {"0": bytes(4)})
    with pytest.raises(HrmMlxError, match="refuses to load os.system"):
        load_torch_checkpoint(path)


def test_build_cannot_alter_a_tensor(tmp_path):
    # BUILD ("b") on a rebuilt tensor with a state dict: must not overwrite its offset and escape the bounds check.
    pickled = b"\x80\x02" + encode({"t": tensor("0", 1, 0, (), ())})[:-1] + encode({"offset": 10**6}) + b"bu."
    path = write_zip(tmp_path / "build.pt", pickled, {"0": bytes(4)})
    with pytest.raises(HrmMlxError, match="corrupted checkpoint pickle"):
        load_torch_checkpoint(path)


# ------------------------------------------------------------------------------------------- broken files


def test_truncated_zip(tmp_path):
    data = (FIXTURES / "mixed.pt").read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(HrmMlxError, match="truncated or corrupted zip") as err:
        load_torch_checkpoint(path)
    assert "\n" not in str(err.value)


def test_corrupted_storage_bytes(tmp_path):
    data = bytearray((FIXTURES / "mixed.pt").read_bytes())
    with zipfile.ZipFile(FIXTURES / "mixed.pt") as archive:
        info = archive.getinfo(next(n for n in archive.namelist() if n.endswith("/data/0")))
    # Flip one byte of the record's data (after its local header) so the CRC check fails.
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    data[info.header_offset + 30 + name_len + extra_len] ^= 0xFF
    path = tmp_path / "corrupt.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(HrmMlxError, match="truncated or corrupted zip"):
        load_torch_checkpoint(path)


def test_truncated_pickle(tmp_path):
    pickled = pickle.dumps({"a": 1, "b": "x" * 50}, protocol=2)
    with pytest.raises(HrmMlxError, match="corrupted checkpoint pickle"):
        load_torch_checkpoint(write_zip(tmp_path / "cut.pt", pickled[:-10]))


def test_truncated_legacy(tmp_path):
    data = (FIXTURES / "legacy.pt").read_bytes()
    for cut in (len(data) - 3, len(data) // 2, 30):
        path = tmp_path / f"legacy_{cut}.pt"
        path.write_bytes(data[:cut])
        with pytest.raises(HrmMlxError):
            load_torch_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"hello, this is not a checkpoint\n" * 4, bytes(range(256)), b"\x80\x02K\x03."])
def test_garbage_files(tmp_path, content):
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    with pytest.raises(HrmMlxError, match="not a PyTorch checkpoint"):
        load_torch_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(HrmMlxError, match="cannot read checkpoint"):
        load_torch_checkpoint(tmp_path / "nope.pt")
