"""Atomic writes: a failed write leaves the old file, and files get ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from dgm.io import atomic_write, current_umask, read_json, write_json


def test_a_failing_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})

    def crash(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write('{"a": ')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert read_json(path) == {"a": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_written_files_get_the_permissions_of_the_umask_not_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        assert current_umask() == 0o022
        path = write_json(tmp_path / "config.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
