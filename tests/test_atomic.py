"""The crash-safe writer: a reader sees the old file or the new one, never a half-written one."""

import json

import pytest

from tl_keras.io import atomic


def test_write_json_replaces_whole_file_and_leaves_no_partial(tmp_path):
    path = tmp_path / "deep" / "summary.json"
    atomic.write_json(path, {"a": 1})
    atomic.write_json(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert sorted(p.name for p in path.parent.iterdir()) == ["summary.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "config.json"
    atomic.write_text(path, "old")

    def half_then_crash(partial):
        partial.write_text("ne")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic.write_with(path, half_then_crash)
    assert path.read_text() == "old"
    assert not atomic.partial_path(path).exists()


def test_partial_left_by_a_killed_writer_is_replaced_not_multiplied(tmp_path):
    path = tmp_path / "frozen.weights.h5"
    atomic.partial_path(path).write_bytes(b"half a file from a SIGKILL")
    atomic.write_bytes(path, b"complete")
    assert path.read_bytes() == b"complete"
    assert [p.name for p in tmp_path.iterdir()] == ["frozen.weights.h5"]


def test_partial_name_keeps_the_extensions_last():
    """Keras picks the save format from the suffix (`.weights.h5`), NumPy from `.npz`."""
    assert atomic.partial_path("a/frozen.weights.h5").name == "frozen.partial.weights.h5"
    assert atomic.partial_path("resume_state.npz").name == "resume_state.partial.npz"
