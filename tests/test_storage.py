"""Paths on another filesystem (TensorFlow's ram://, in memory, as an object store would behave) and on the local disk
answer alike."""

import uuid

import pytest

from tl_keras.io import storage


@pytest.fixture(params=["local", "ram"])
def root(request, tmp_path):
    return str(tmp_path) if request.param == "local" else f"ram://{uuid.uuid4().hex}"


def test_listing_reading_and_writing_answer_alike_on_any_filesystem(root):
    storage.write_bytes(storage.join(root, "b", "two.txt"), b"2")
    storage.write_bytes(storage.join(root, "a", "deep", "one.txt"), "é".encode())
    storage.write_bytes(storage.join(root, "a", "zero.txt"), b"0")
    assert storage.listdir(root) == ["a", "b"]
    assert storage.isdir(storage.join(root, "a")) and not storage.isfile(storage.join(root, "a"))
    assert storage.isfile(storage.join(root, "b", "two.txt"))
    found = [storage.relative_parts(p, root) for p in storage.files_under(root)]
    assert found == [("a", "zero.txt"), ("a", "deep", "one.txt"), ("b", "two.txt")] or found == [
        ("a", "deep", "one.txt"), ("a", "zero.txt"), ("b", "two.txt")]
    assert storage.read_text(storage.join(root, "a", "deep", "one.txt")) == "é"
    assert storage.size_and_mtime(storage.join(root, "b", "two.txt"))[0] == 1
    assert storage.name_of(storage.join(root, "a", "zero.txt")) == "zero.txt" and storage.suffix_of("x/y.JPG") == ".JPG"


def test_a_published_folder_appears_whole_with_its_last_files_last(root, tmp_path):
    source = tmp_path / "made"
    (source / "variables").mkdir(parents=True)
    (source / "variables" / "v.index").write_bytes(b"i")
    (source / "saved_model.pb").write_bytes(b"pb")
    target = storage.join(root, "exports", "3")
    storage.publish_tree(source, target, last=("saved_model.pb",))
    assert storage.read_bytes(storage.join(target, "saved_model.pb")) == b"pb"
    assert storage.read_bytes(storage.join(target, "variables", "v.index")) == b"i"
    with pytest.raises(FileExistsError):
        storage.publish_tree(source, target)


def test_remote_paths_keep_their_scheme():
    assert storage.is_remote("gs://bucket/x") and not storage.is_remote("/tmp/x") and not storage.is_remote("file:///tmp/x")
    assert storage.join("gs://bucket/", "a", "b.jpg") == "gs://bucket/a/b.jpg"
    assert storage.parent_of("gs://bucket/a/b.jpg") == "gs://bucket/a"
    with pytest.raises(ValueError, match="not on the local filesystem"):
        storage.local("gs://bucket/x")


def test_a_run_folder_on_a_store_is_worked_on_locally_and_pushed_back(monkeypatch, tmp_path):
    from tl_keras.io.mirror import working_copy

    monkeypatch.setenv("TL_KERAS_MIRRORS", str(tmp_path / "mirrors"))
    run = f"ram://{uuid.uuid4().hex}/runs/a"
    storage.write_bytes(f"{run}/config.json", b"{}")
    storage.write_bytes(f"{run}/feature_cache/train.npy", b"big")
    export = f"ram://{uuid.uuid4().hex}/exports/a/1"
    storage.write_bytes(f"{export}/saved_model.pb", b"pb")
    with working_copy(run) as local:
        assert (storage.local(local) / "config.json").read_bytes() == b"{}"
        assert not (storage.local(local) / "feature_cache").exists()  # caches stay where they were made
        (storage.local(local) / "evaluation_test").mkdir()
        (storage.local(local) / "evaluation_test" / "metrics.json").write_text("{}")
    assert storage.read_text(f"{run}/evaluation_test/metrics.json") == "{}"
    with working_copy(export) as local:
        assert storage.name_of(local) == "1" and (storage.local(local) / "saved_model.pb").read_bytes() == b"pb"
    with working_copy(str(tmp_path)) as local:
        assert local == str(tmp_path)
