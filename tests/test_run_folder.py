"""RunFolder: one class knows the run-folder layout and answers questions about a run."""

import json

from tl_keras.io.run_folder import RunFolder


def test_layout_and_run_states(tmp_path):
    run = RunFolder(tmp_path / "r")
    assert run.checkpoint("frozen") == tmp_path / "r" / "checkpoints" / "frozen.weights.h5"
    assert run.scratch.history == tmp_path / "r" / "scratch" / "history.json"
    assert run.image_cache("train", 224, "abc").name == "train_224px_abc"
    assert not run.is_run() and not run.is_finished() and not run.is_interrupted()
    run.resume_state.parent.mkdir(parents=True)
    run.resume_state.write_bytes(b"state")
    run.config.write_text("{}")
    assert run.is_run() and run.is_interrupted()
    run.summary.write_text(json.dumps({"classes": ["cat", "dog"]}))
    assert run.is_finished() and not run.is_interrupted()


def test_class_names_prefer_the_summary_then_the_split(tmp_path):
    run = RunFolder(tmp_path)
    assert run.class_names() is None
    run.split.write_text(json.dumps({"class_names": ["a", "b"]}))
    assert run.class_names() == ["a", "b"]
    run.summary.write_text(json.dumps({"classes": ["x", "y"]}))
    assert run.class_names() == ["x", "y"]
    run.summary.write_text("{ torn")
    assert run.class_names() == ["a", "b"], "an unreadable summary falls back to the split"
