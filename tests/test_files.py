"""esc_bench.files.write_atomic: the one whole-file write."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from esc_bench.files import write_atomic
from esc_bench.store.jsonl import write_json_atomic


def test_writes_text_and_bytes_making_parents(tmp_path: Path) -> None:
    write_atomic(tmp_path / "a" / "b.txt", "héllo\n")
    write_atomic(tmp_path / "c.bin", b"\x00\x01")
    assert (tmp_path / "a" / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(target, 12)  # type: ignore[arg-type]  # not bytes: the write fails midway
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_files_get_the_usual_permissions(tmp_path: Path) -> None:
    """Like a plain open: 0666 less the umask (a manifest is as readable as the JSONL files beside it)."""
    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "manifest.json", {"a": 1})
        write_atomic(tmp_path / "report.md", "x")
    finally:
        os.umask(old)
    for name in ("manifest.json", "report.md"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
