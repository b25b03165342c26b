"""dcsbench.fileio: atomic writes leave no temporary file and give the file a normal mode."""

from __future__ import annotations

import os

import pytest

from dcsbench.fileio import atomic_write_bytes, atomic_write_text


def test_atomic_write_gives_the_umask_mode_and_keeps_an_existing_one(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    new = tmp_path / "new.txt"
    atomic_write_text(new, "a")
    assert new.read_text() == "a" and (new.stat().st_mode & 0o777) == 0o666 & ~umask  # not mkstemp's 0600
    os.chmod(new, 0o640)
    atomic_write_bytes(new, b"b")
    assert new.read_bytes() == b"b" and (new.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
