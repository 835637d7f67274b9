"""TFDS sources, through a dataset built locally by the test (no download)."""

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from tl_keras.vision import data as data_lib  # noqa: E402


class LocalShapes(tfds.core.GeneratorBasedBuilder):
    """A tiny image-classification dataset with only a train split, as many TFDS sets have."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "label": tfds.features.ClassLabel(names=["dark", "light", "mid"]),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        rng = np.random.default_rng(0)
        for i in range(60):
            label = i % 3
            level = (30, 220, 128)[label]
            size = (12 + i % 4, 10 + i % 5, 3)
            yield i, {"image": np.clip(level + rng.integers(-10, 10, size), 0, 255).astype(np.uint8), "label": label}


def test_tfds_train_only_dataset_gets_a_seeded_stratified_split(tmp_path):
    splits = data_lib.load_tfds("local_shapes", str(tmp_path), validation_fraction=0.2, test_fraction=0.1, seed=5)
    assert splits.class_names == ["dark", "light", "mid"]
    assert splits.counts["validation"] == {"dark": 4, "light": 4, "mid": 4}
    assert splits.counts["test"] == {"dark": 2, "light": 2, "mid": 2}
    train = list(splits.train.as_numpy_iterator())
    assert len(train) == 42 and train[0][0].dtype == np.uint8 and train[0][0].shape[-1] == 3
    record = splits.split_record
    assert not set(record["train"]["indices"]) & set(record["validation"]["indices"])
    again = data_lib.load_tfds("local_shapes", str(tmp_path), 0.2, 0.1, seed=5)
    assert again.split_record == record
    batches = data_lib.make_batches(splits.validation, 16, 4, num_examples=12)
    labels = np.concatenate([y for _, y in batches.as_numpy_iterator()])
    assert np.bincount(labels).tolist() == [4, 4, 4]


class LocalTiles(tfds.core.GeneratorBasedBuilder):
    """Native train and validation splits and a label feature not called `label`, as e.g. `oxford_flowers102` variants have."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "picture": tfds.features.Image(shape=(None, None, 3)),
                "kind": tfds.features.ClassLabel(names=["a", "b"]),
                "id": tfds.features.Text(),
            }),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 20), "validation": self._generate_examples(20, 28)}

    def _generate_examples(self, start, stop):
        for i in range(start, stop):
            yield i, {"picture": np.full((6, 6, 3), 40 + 150 * (i % 2), np.uint8), "kind": i % 2, "id": str(i)}


def test_native_validation_split_and_another_label_key_are_used(tmp_path):
    splits = data_lib.load_tfds("local_tiles", str(tmp_path), validation_fraction=0.2, test_fraction=0.25, seed=0)
    assert splits.class_names == ["a", "b"]
    assert splits.split_record["validation"] == "validation" and splits.split_record["label_key"] == "kind"
    assert splits.counts["validation"] == {"a": 4, "b": 4}
    assert sum(splits.counts["train"].values()) == 16 and sum(splits.counts["test"].values()) == 4
    for image, label in splits.validation.as_numpy_iterator():
        assert image.shape == (6, 6, 3) and image[0, 0, 0] == 40 + 150 * label, "the label read is the one stored with the picture"


def test_split_selection_decodes_only_the_images_it_keeps(tmp_path, monkeypatch):
    import tensorflow as tf

    from tl_keras.vision import tfds_source

    decoded = []
    original = tfds_source.decode_image

    def counting(feature, encoded):
        with tf.control_dependencies([tf.py_function(lambda: decoded.append(1) or 0, [], tf.int32)]):
            return tf.identity(original(feature, encoded))

    monkeypatch.setattr(tfds_source, "decode_image", counting)
    splits = data_lib.load_tfds("local_shapes", str(tmp_path), validation_fraction=0.2, test_fraction=0.1, seed=5)
    decoded.clear()
    assert len(list(splits.test.as_numpy_iterator())) == 6
    assert len(decoded) == 6, f"reading the 6-image test split decoded {len(decoded)} images"


class OfflineDataset(tfds.core.GeneratorBasedBuilder):
    """A dataset whose download fails the way it does without internet (a connection error inside the downloader)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"image": tfds.features.Image(shape=(None, None, 3)), "label": tfds.features.ClassLabel(num_classes=2)}
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        try:
            raise ConnectionError("Failed to resolve 'storage.example.org'")
        except ConnectionError as error:
            raise RuntimeError("download of https://storage.example.org/data.zip failed") from error

    def _generate_examples(self):
        yield from ()


def test_a_failed_tfds_download_is_one_line_naming_the_flag_and_the_way_out(tmp_path, monkeypatch):
    from tl_keras.config.settings import ConfigError
    from tl_keras.data import tfds_prepare

    monkeypatch.setattr(tfds_prepare, "can_reach", lambda host: True)  # a network that resolves names, then fails the download
    with pytest.raises(ConfigError) as raised:
        data_lib.load_tfds("offline_dataset", str(tmp_path))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("--tfds=offline_dataset: the download failed")
    assert "--tfds_data_dir" in message


def test_offline_a_dataset_not_yet_prepared_ends_in_one_line_before_any_download_retry(tmp_path, monkeypatch):
    import socket
    import time

    from tl_keras.config.settings import ConfigError

    def unresolvable(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"^--tfds=beans: not prepared in .* cannot be reached \(no internet\?\); .*--tfds_data_dir$"):
        data_lib.load_tfds("beans", str(tmp_path))  # a catalogue dataset: TFDS would retry its download for minutes
    assert time.perf_counter() - started < 5 and not list(tmp_path.rglob("*.tfrecord*"))


def test_tfds_preparation_imports_what_it_needs():
    """tensorflow-datasets needs importlib_resources to prepare any dataset but does not declare it; setup.py must."""
    from pathlib import Path

    import importlib_resources  # noqa: F401 - the import itself is the check

    assert '"importlib_resources"' in (Path(__file__).parents[1] / "setup.py").read_text()


class LocalReviews(tfds.core.GeneratorBasedBuilder):
    """A tiny text-classification dataset laid out like glue/sst2: train and validation, a test split without labels (-1)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "sentence": tfds.features.Text(), "label": tfds.features.ClassLabel(names=["negative", "positive"]),
                "idx": tfds.features.Scalar(np.int32),
            }),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 40, True), "validation": self._generate_examples(40, 50, True),
                "test": self._generate_examples(50, 60, False)}

    def _generate_examples(self, start, stop, labelled):
        for i in range(start, stop):
            yield i, {"sentence": f"{'a good' if i % 2 else 'an awful'} film, café {i}", "label": (i % 2) if labelled else -1, "idx": i}


def test_a_tfds_text_dataset_becomes_the_runs_files_without_its_unlabelled_split(tmp_path):
    import json

    from tl_keras.text.data import load_text_splits
    from tl_keras.text.tables import tfds_to_files

    files = tfds_to_files("local_reviews", tmp_path / "texts", str(tmp_path / "tfds"))
    assert sorted(files) == ["train", "validation"]  # the test split's labels are all -1: absent, carved from train instead
    first = json.loads(open(files["train"], encoding="utf-8").readline())
    assert first["label"] in ("negative", "positive") and "café" in first["text"]
    splits = load_text_splits(files["train"], validation_source=files["validation"], text_column="text", label_column="label",
                              test_fraction=0.25, seed=1)
    assert splits.class_names == ["negative", "positive"] and len(splits.texts["validation"]) == 10
    assert len(splits.texts["test"]) == 10 and len(splits.texts["train"]) == 30
    assert tfds_to_files("local_reviews", tmp_path / "texts", str(tmp_path / "tfds")) == files  # written once


class LocalTopics(tfds.core.GeneratorBasedBuilder):
    """Texts whose ClassLabel names are not in sorted order (as ag_news: World, Sports, Business, Sci/Tech)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "description": tfds.features.Text(), "label": tfds.features.ClassLabel(names=["world", "sports", "business"]),
        }), supervised_keys=("description", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(30)}

    def _generate_examples(self, count):
        for i in range(count):
            yield i, {"description": f"{['war', 'goal', 'market'][i % 3]} news {i}", "label": i % 3}


def test_tfds_texts_keep_the_datasets_class_order_and_are_never_reused_for_another_dataset(tmp_path):
    from tl_keras.text.data import load_text_splits
    from tl_keras.text.tables import tfds_class_order, tfds_to_files

    folder = tmp_path / "texts"
    tfds_to_files("local_reviews", folder, str(tmp_path / "tfds"))
    files = tfds_to_files("local_topics", folder, str(tmp_path / "tfds"))  # the same folder: once stale reviews came back
    assert "news" in open(files["train"], encoding="utf-8").readline()
    assert tfds_class_order(folder) == ["world", "sports", "business"]
    splits = load_text_splits(files["train"], text_column="text", label_column="label", class_order=tfds_class_order(folder))
    assert splits.class_names == ["world", "sports", "business"]  # output k is the dataset's label k, as for image TFDS


def test_whole_number_labels_are_ordered_as_numbers():
    from tl_keras.text.data import ordered_classes

    assert ordered_classes({"10", "2", "1"}) == ["1", "2", "10"]
    assert ordered_classes({"b", "a", "10"}) == ["10", "a", "b"]


def test_text_features_are_found_or_named(tmp_path):
    from tl_keras.config.settings import ConfigError
    from tl_keras.text.tables import text_feature_keys

    assert text_feature_keys(LocalReviews(data_dir=str(tmp_path))) == ("sentence", "label")
    assert text_feature_keys(LocalTiles(data_dir=str(tmp_path))) == ("id", "kind")
    with pytest.raises(ConfigError, match="no feature 'review'"):
        text_feature_keys(LocalReviews(data_dir=str(tmp_path)), text_key="review")
    with pytest.raises(ConfigError, match="0 text features"):
        text_feature_keys(LocalShapes(data_dir=str(tmp_path)))


@pytest.mark.slow
def test_a_text_run_on_a_tfds_dataset(tmp_path, tiny_encoder):
    from tl_keras.config.run_config import RunConfig
    from tl_keras.run import run_experiment

    config = RunConfig(
        text_tfds="local_reviews", tfds_data_dir=str(tmp_path / "tfds"), backbone=str(tiny_encoder), run_dir=str(tmp_path / "run"),
        fine_tune_epochs=1, frozen_epochs=2, batch_size=8, export=False, verbose=0, min_images_per_class=2,
    )
    summary = run_experiment(config)
    assert summary["classes"] == ["negative", "positive"] and summary["evaluated_on"] == "test"
    assert config.resolved().name == "local_reviews" and (tmp_path / "run" / "tfds_texts" / "validation.jsonl").is_file()
