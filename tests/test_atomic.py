"""The one atomic-write helper: a file or folder is the old one or the whole new one, never a part, and a failed
writer leaves no temporary file behind."""

import json
import os
import stat

import pytest

from hrm_mlx import atomic


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_files_of_text_bytes_json_or_a_writer_function(tmp_path):
    atomic.write_file(tmp_path / "a.txt", "héllo\n")
    atomic.write_file(tmp_path / "b.bin", b"\x00\x01")
    atomic.write_json(tmp_path / "c.json", {"x": [1, 2]})
    atomic.write_file(tmp_path / "d.txt", lambda path: path.write_text("by the writer"))
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert json.loads((tmp_path / "c.json").read_text()) == {"x": [1, 2]}
    assert (tmp_path / "c.json").read_text().endswith("\n")
    assert (tmp_path / "d.txt").read_text() == "by the writer"
    assert leftovers(tmp_path) == []


def test_modes_follow_the_umask_and_scripts_are_executable(tmp_path):
    plain = atomic.write_file(tmp_path / "plain", "x")
    script = atomic.write_file(tmp_path / "run.sh", "#!/bin/sh\necho ran\n", executable=True)
    assert stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask()
    assert stat.S_IMODE(script.stat().st_mode) == 0o777 & ~umask()
    assert os.access(script, os.X_OK) and not os.access(plain, os.X_OK)


def test_a_failed_writer_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = atomic.write_file(tmp_path / "f.txt", "old")

    def half_then_fail(path):
        path.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic.write_file(target, half_then_fail)
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_a_folder_appears_whole_replaces_or_keeps_the_old_one(tmp_path):
    target = tmp_path / "model"
    with atomic.folder(target) as tmp:
        (tmp / "a").write_text("1")
        assert not target.exists()
    assert (target / "a").read_text() == "1"
    with atomic.folder(target) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]  # replaced, not merged
    with atomic.folder(target, replace=False) as tmp:  # another writer finished first: its folder stands
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    with pytest.raises(RuntimeError):
        with atomic.folder(target) as tmp:
            (tmp / "d").write_text("4")
            raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["b"] and leftovers(tmp_path) == []
