"""Training epochs shuffle indices, not pixels: classes mix from the first batch, at any size, and epochs replay exactly."""

import numpy as np
import pytest

from tl_keras.vision import data as data_lib

CLASSES, PER_CLASS, SIZE, BATCH = 24, 10, 8, 16


@pytest.fixture(scope="module")
def many_classes(tmp_path_factory):
    """24 class folders listed class by class, as every real folder is: the order that used to reach SGD."""
    from conftest import write_png

    root = tmp_path_factory.mktemp("many") / "images"
    for c in range(CLASSES):
        for i in range(PER_CLASS):
            write_png(root / f"class_{c:02d}" / f"{i}.png", np.full((10, 12, 3), (c * 10) % 256, np.uint8))
    return data_lib.load_image_folder(root, 0.0, 0.0, seed=0, check=False)


def _epoch_labels(batches, epoch):
    return [y for _, y in batches.epoch(epoch).as_numpy_iterator()]


def _iid_distinct_classes(batch):
    """Expected distinct classes in a batch drawn without replacement from equal classes (exact)."""
    from math import comb

    total = CLASSES * PER_CLASS
    return CLASSES * (1 - comb(total - PER_CLASS, batch) / comb(total, batch))


@pytest.mark.parametrize("cache", ["none", "memory", "disk"])
@pytest.mark.slow  # several seconds: the full suite runs it
def test_first_batches_mix_classes_as_iid_would_even_past_the_memory_budget(many_classes, cache, tmp_path):
    budget = 5 * SIZE * SIZE * 3  # five images: "auto" would not keep this split in memory
    batches = data_lib.epoch_batches(
        many_classes.train, SIZE, BATCH, seed=3, indexed=many_classes.indexed["train"], cache=cache,
        cache_path=tmp_path / "train", memory_budget_bytes=budget,
    )
    first = _epoch_labels(batches, 0)
    assert sum(len(y) for y in first) == CLASSES * PER_CLASS and batches.steps_per_epoch == len(first)
    distinct = np.mean([len(set(y.tolist())) for y in first[:-1]])
    assert distinct >= 0.85 * _iid_distinct_classes(BATCH), f"{distinct:.1f} distinct classes per batch"
    seen_early = set(np.concatenate(first[:4]).tolist())
    assert len(seen_early) >= 0.75 * CLASSES, "a quarter of an epoch already reaches most classes"


@pytest.mark.slow  # several seconds: the full suite runs it
def test_every_storage_gives_the_same_epochs(many_classes, tmp_path):
    def epochs(cache):
        stream = data_lib.epoch_batches(
            many_classes.train, SIZE, BATCH, seed=5, indexed=many_classes.indexed["train"], cache=cache, cache_path=tmp_path / "t"
        )
        return [np.concatenate(_epoch_labels(stream, e)) for e in (0, 1)]

    none, memory, disk = epochs("none"), epochs("memory"), epochs("disk")
    for a, b, c in zip(none, memory, disk):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert not np.array_equal(none[0], none[1]), "each epoch has its own order"


@pytest.mark.parametrize("cache", ["none", "memory"])
@pytest.mark.slow  # several seconds: the full suite runs it
def test_a_stream_resumed_in_the_middle_yields_the_same_batches(many_classes, cache):
    def stream():
        return data_lib.epoch_batches(many_classes.train, SIZE, BATCH, seed=9, indexed=many_classes.indexed["train"], cache=cache)

    steps = stream().steps_per_epoch
    uninterrupted = list(stream().stream(0).take(3 * steps).as_numpy_iterator())
    resumed = list(stream().stream(2).take(steps).as_numpy_iterator())  # a new process, started at epoch 2
    for (x_a, y_a), (x_b, y_b) in zip(uninterrupted[2 * steps:], resumed):
        np.testing.assert_array_equal(y_a, y_b)
        np.testing.assert_array_equal(x_a, x_b)


def test_auto_keeps_a_split_in_memory_only_when_it_fits():
    assert data_lib.storage_for("auto", 100, 10, budget_bytes=100 * 300) == "memory"
    assert data_lib.storage_for("auto", 101, 10, budget_bytes=100 * 300) == "none"
    assert data_lib.storage_for("auto", -1, 10) == "none"
    with pytest.raises(ValueError, match="^cache="):
        data_lib.storage_for("ram", 1, 1)


@pytest.mark.parametrize("cache", ["none", "memory"])
@pytest.mark.slow  # several seconds: the full suite runs it
def test_unchecked_unreadable_files_leave_epochs_exactly_their_step_count(tmp_path, cache):
    """With --nodata_check, a file that fails to decode once made epochs shorter than their step count (and moved resume points)."""
    from conftest import write_png

    root = tmp_path / "images"
    for c in range(3):
        for i in range(5):
            write_png(root / f"c{c}" / f"{i}.png", np.full((10, 10, 3), 80 * c, np.uint8))
    (root / "c1" / "broken.png").write_bytes(b"\x89PNG not really")
    splits = data_lib.load_image_folder(root, 0.0, 0.0, seed=0, check=False)
    assert len(splits.indexed["train"]) == 16
    batches = data_lib.epoch_batches(splits.train, SIZE, 4, seed=1, indexed=splits.indexed["train"], cache=cache, cache_path=tmp_path / "t")
    assert batches.steps_per_epoch == 4, "15 readable images in batches of 4"
    for epoch in (0, 1):
        sizes = [len(y) for y in _epoch_labels(batches, epoch)]
        assert len(sizes) == batches.steps_per_epoch and sum(sizes) == 15


@pytest.mark.parametrize("sides", [(SIZE, SIZE), (10, 13), (SIZE, 13)])
@pytest.mark.slow  # several seconds: the full suite runs it
def test_sizes_from_the_data_check_decide_the_resize_once_with_the_same_pixels(tmp_path, sides):
    """All at the target size (no resize), none (resize all) or mixed (per image): identical batches either way."""
    from conftest import write_png

    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for c in range(2):
        for i, side in enumerate(sides * 3):
            write_png(root / f"c{c}" / f"{i}.png", rng.integers(0, 256, (side, side + i % 2 * (side != SIZE), 3), dtype=np.uint8))
    checked = data_lib.load_image_folder(root, 0.0, 0.0, seed=0, check=True).indexed["train"]
    assert checked.sizes is not None and len(checked.sizes) == len(checked)
    unknown = data_lib.IndexedSplit(checked.labels, checked.keys, checked.load)
    assert unknown.fitting(SIZE) == "maybe"
    expected = {(SIZE, SIZE): "all", (10, 13): "none", (SIZE, 13): "maybe"}[sides]
    assert checked.fitting(SIZE) == expected
    one = np.concatenate([x for x, _ in checked.dataset(image_size=SIZE).batch(4).as_numpy_iterator()])
    two = np.concatenate([x for x, _ in unknown.dataset(image_size=SIZE).batch(4).as_numpy_iterator()])
    np.testing.assert_array_equal(one, two)
