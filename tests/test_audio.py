"""Sound data and front end: reading, resampling and fitting clips, the data check, the split record, the layers, validation."""

import json

import numpy as np
import pytest
import tensorflow as tf

import tl_keras  # noqa: F401 - registers the modalities
from audio_fixtures import clip_folder, tone, write_wav
from tl_keras.audio import clips
from tl_keras.audio.augment import WaveAugment, with_noise
from tl_keras.audio.baselines import mfcc_statistics
from tl_keras.audio.data import load_audio_splits
from tl_keras.audio.export import wav_bytes
from tl_keras.audio.frontend import LogMelImage, SpecAugment
from tl_keras.audio.sources import clips_in_folder, clips_in_table
from tl_keras.config.recipes import auto_recipe
from tl_keras.config.run_config import RunConfig
from tl_keras.config.settings import ConfigError
from tl_keras.data.splits import SplitMismatchError


@pytest.mark.parametrize("from_rate, to_rate", [(48000, 16000), (8000, 16000), (22050, 16000)])
def test_resampling_keeps_a_tone_at_its_pitch(from_rate, to_rate):
    seconds = np.arange(from_rate // 2) / from_rate
    resampled = clips.resample(np.sin(2 * np.pi * 440 * seconds).astype(np.float32), from_rate, to_rate).numpy()
    expected = np.sin(2 * np.pi * 440 * np.arange(len(resampled)) / to_rate)
    assert abs(len(resampled) - to_rate // 2) <= 1
    assert np.abs(resampled[200:-200] - expected[200:-200]).max() < 2e-3  # the edges lack half their window


def test_downsampling_removes_what_the_new_rate_cannot_hold():
    rate = 48000
    high = np.sin(2 * np.pi * 15000 * np.arange(rate) / rate).astype(np.float32)  # above 8 kHz, the Nyquist of 16 kHz
    assert np.abs(clips.resample(high, rate, 16000).numpy()[200:-200]).max() < 0.05  # not folded back as a 1 kHz alias


def test_a_short_clip_is_centred_and_a_long_one_cropped_about_its_loudest_stretch():
    short = np.ones(10, np.float32)
    fitted = clips.fit_length(short, 20).numpy()
    assert fitted[:5].sum() == 0 and fitted[5:15].sum() == 10 and fitted[15:].sum() == 0
    long = np.zeros(100, np.float32)
    long[70:80] = 1.0
    cropped = clips.fit_length(long, 20).numpy()
    assert cropped.shape == (20,) and cropped.sum() == 10


@pytest.mark.parametrize("sample_format, stereo", [("int16", False), ("uint8", False), ("float32", True)])
def test_wav_files_of_every_common_format_read_as_mono_floats(tmp_path, sample_format, stereo):
    samples = tone(440, 0.5, 8000, np.random.default_rng(0))
    path = write_wav(tmp_path / "a.wav", samples, 8000, stereo=stereo, sample_format=sample_format)
    read, info = clips.read_wav(str(path))
    assert info.rate == 8000 and info.channels == (2 if stereo else 1) and abs(info.seconds - 0.5) < 1e-3
    expected = samples * (0.95 if stereo else 1.0)  # the mix of the two channels (the second at 0.9)
    assert np.abs(read - expected).max() < (0.02 if sample_format == "uint8" else 1e-3)


def test_training_and_serving_fit_a_clip_identically():
    """The host path (SciPy read, then the shared ops) and the SavedModel's (tf.audio.decode_wav, then the same ops) agree."""
    samples = tone(700, 0.6, 22050, np.random.default_rng(1))
    data = wav_bytes(samples, 22050)
    host = clips.prepare(np.frombuffer(data[44:], "<i2").astype(np.float32) / 32768, 22050, 16000, 16000)
    served = clips.decode_wav_bytes(tf.constant(data), 16000, 16000).numpy()
    np.testing.assert_allclose(host, served, atol=1e-6)  # the same ops; float sums may round in another order


def test_a_folder_names_clips_in_other_formats_instead_of_passing_over_them(tmp_path):
    clip_folder(tmp_path / "clips", per_class=2)
    (tmp_path / "clips" / "low" / "extra.mp3").write_bytes(b"ID3")
    found = clips_in_folder(tmp_path / "clips")
    assert len(found.paths) == 6 and any("extra.mp3" in p and "ffmpeg" in p for p in found.problems)
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ConfigError, match="no WAV clip in any class sub-folder"):
        clips_in_folder(tmp_path / "empty")


def test_a_table_reports_bad_rows_by_line_and_refuses_a_header_it_cannot_read(tmp_path):
    clip_folder(tmp_path / "clips", per_class=2)
    table = tmp_path / "clips.csv"
    table.write_text("path,label\nclips/low/low_0.wav,low\nclips/nowhere.wav,low\nclips/mid/mid_0.wav,mid,extra\nclips/mid/mid_1.wav,\n")
    found = clips_in_table(table)
    assert found.paths == [str(tmp_path / "clips" / "low" / "low_0.wav")]
    assert [p.split(": ")[0] for p in found.problems] == [f"{table}:3", f"{table}:4", f"{table}:5"]
    table.write_text("file_id,digit\nx.wav,1\n")
    with pytest.raises(ConfigError, match="names no clip column"):
        clips_in_table(table)


def test_the_data_check_skips_unreadable_silent_and_empty_clips_by_name_and_notes_the_rest(tmp_path):
    root = clip_folder(tmp_path / "clips", per_class=6)
    (root / "low" / "broken.wav").write_bytes(b"RIFF\x00\x00not really")
    write_wav(root / "mid" / "silent.wav", np.zeros(8000, np.float32), 8000)
    write_wav(root / "high" / "blip.wav", np.ones(100, np.float32) * 0.5, 8000)
    write_wav(root / "high" / "loud.wav", np.clip(tone(2400, 0.5, 8000, np.random.default_rng(2), 3.0), -1, 1), 8000)
    splits = load_audio_splits(str(root), table=False, seed=0, validation_fraction=0.25, test_fraction=0.25)
    problems = "\n".join(splits.problems)
    assert "broken.wav: not a readable WAV file" in problems
    assert "silent.wav: silent" in problems and "blip.wav: 12 ms long" in problems
    assert any(p.endswith("loud.wav") for p in splits.report["clipped"]) and len(splits.report["multi_channel"]) == 3
    assert splits.report["resampled_from"] == {"8000": 7, "22050": 6}  # 8 kHz: two tones a class and the loud one
    length = splits.report["clip_length"]
    assert length["chosen"] == "95th percentile of the training clips" and 0.3 <= length["seconds"] <= 0.9
    assert splits.waves["train"].shape[1] == length["samples"] == splits.record["clip_samples"]
    assert sum(len(w) for w in splits.waves.values()) == 19  # 18 tones and the loud one


def test_the_split_is_recorded_and_edited_clips_are_refused_by_name(tmp_path):
    root = clip_folder(tmp_path / "clips", per_class=6)
    split_file = tmp_path / "split.json"
    first = load_audio_splits(str(root), table=False, seed=3, split_file=split_file)
    split_file.write_text(json.dumps(first.record))
    again = load_audio_splits(str(root), table=False, seed=3, split_file=split_file)
    assert again.paths == first.paths
    write_wav(root / "low" / "low_0.wav", tone(300, 0.4, 8000, np.random.default_rng(9)), 8000)
    with pytest.raises(SplitMismatchError, match="source_sha256"):
        load_audio_splits(str(root), table=False, seed=3, split_file=split_file)


def test_a_table_with_a_split_column_keeps_its_split_and_numbers_make_a_regression(tmp_path):
    root = clip_folder(tmp_path / "clips", per_class=4)
    paths = sorted(root.rglob("*.wav"))
    rows = [f"{p.relative_to(tmp_path)},{i * 0.37:.2f},{['train', 'train', 'validation', 'test'][i % 4]}" for i, p in enumerate(paths)]
    table = tmp_path / "clips.csv"
    table.write_text("path,value,split\n" + "\n".join(rows) + "\n")
    splits = load_audio_splits(str(table), table=True, seed=0)
    assert splits.target.kind == "regression" and [len(splits.paths[s]) for s in ("train", "validation", "test")] == [6, 3, 3]
    assert splits.paths["test"] == [str(p) for i, p in enumerate(paths) if i % 4 == 3]


def test_the_log_mel_image_is_an_image_and_the_training_only_layers_leave_inference_alone():
    waves = np.stack([tone(300, 0.5, 16000, np.random.default_rng(0)), tone(2400, 0.5, 16000, np.random.default_rng(1))])
    image = LogMelImage(16000, side=48, floor_db=40.0)(waves).numpy()
    assert image.shape == (2, 48, 48, 3) and image.min() >= 0 and image.max() <= 255.0 + 1e-3
    assert np.abs(image[0] - image[1]).mean() > 10  # a low and a high tone light different rows
    masks = SpecAugment(masks=2, max_fraction=0.3, seed=0)
    np.testing.assert_array_equal(masks(image, training=False), image)
    assert not np.allclose(masks(image, training=True), image)
    shift = WaveAugment(0.2, 10.0, seed=0)
    np.testing.assert_array_equal(shift(waves, training=False), waves)
    assert not np.allclose(shift(waves, training=True), waves)


def test_noise_at_a_given_snr_has_that_snr():
    waves = np.stack([tone(500, 1.0, 16000, np.random.default_rng(0))])
    noisy = with_noise(waves, 10.0, seed=0)
    ratio = 10 * np.log10(np.mean(waves ** 2) / np.mean((noisy - waves) ** 2))
    assert abs(ratio - 10.0) < 0.2


def test_mfcc_statistics_tell_a_low_tone_from_a_high_one():
    rng = np.random.default_rng(0)
    waves = np.stack([tone(300, 0.5, 16000, rng), tone(300, 0.5, 16000, rng), tone(2400, 0.5, 16000, rng)])
    features = mfcc_statistics(waves)
    assert features.shape == (3, 52)
    assert np.linalg.norm(features[0] - features[1]) < np.linalg.norm(features[0] - features[2])


@pytest.mark.parametrize("settings, message", [
    ({"audio_dir": "nowhere"}, "--audio_dir: folder not found"),
    ({"audio_dir": "CLIPS", "flip": "none"}, "--flip does not apply to sound runs"),
    ({"audio_dir": "CLIPS", "noise_snr_db": 40.0}, "--noise_snr_db must be 0 (off) or below 30 dB"),
    ({"audio_dir": "CLIPS", "task": "multi_label"}, "--task=multi_label: class folders give one class per clip"),
    ({"audio_dir": "CLIPS", "text_file": "t.csv"}, "--text_file and --audio_dir are all set"),
])
def test_sound_settings_that_cannot_be_honoured_are_refused_by_flag(tmp_path, settings, message):
    (tmp_path / "clips" / "a").mkdir(parents=True)
    settings = {k: str(tmp_path / "clips") if v == "CLIPS" else v for k, v in settings.items()}
    explicit = ",".join(settings)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunConfig(**settings, explicit=explicit).validate()


def test_auto_picks_the_speech_encoder_only_where_its_files_are_at_hand(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_KERAS_SPEECH_EMBEDDING", str(tmp_path / "none"))
    monkeypatch.setattr("tl_keras.audio.model.SPEECH_EMBEDDING_HOME", tmp_path / "none")
    assert auto_recipe(RunConfig(audio_dir="clips")) == "audio_image"
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    for name in ("melspectrogram.tflite", "embedding_model.tflite"):
        (encoder / name).write_bytes(b"")
    monkeypatch.setenv("TL_KERAS_SPEECH_EMBEDDING", str(encoder))
    assert auto_recipe(RunConfig(audio_dir="clips")) == "audio"
    assert auto_recipe(RunConfig(audio_dir="clips", backbone="efficientnet_b0", explicit="backbone")) == "audio_image"


class LocalTones:
    """A TFDS dataset defined here (train and test only, integer samples), built in tmp_path: what --audio_tfds reads."""

    @staticmethod
    def builder(data_dir):
        import tensorflow_datasets as tfds

        class LocalToneSet(tfds.core.GeneratorBasedBuilder):
            VERSION = tfds.core.Version("1.0.0")

            def _info(self):
                return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                    "audio": tfds.features.Audio(shape=(None,), dtype=np.int16, sample_rate=8000),
                    "label": tfds.features.ClassLabel(names=["low", "high"]),
                }), supervised_keys=("audio", "label"))

            def _split_generators(self, dl_manager):
                return {"train": self._generate_examples(0, 10), "test": self._generate_examples(1, 4)}

            def _generate_examples(self, seed, count):
                rng = np.random.default_rng(seed)
                for i in range(count):
                    pitch = 300 if i % 2 == 0 else 2400
                    yield i, {"audio": (tone(pitch, 0.4, 8000, rng) * 32767).astype(np.int16), "label": i % 2}

        return LocalToneSet(data_dir=str(data_dir))


def test_a_tfds_audio_set_becomes_wav_files_and_a_table_whose_training_clips_are_split_by_the_fractions(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from tl_keras.audio.tfds_source import tfds_to_table

    builder = LocalTones.builder(tmp_path / "tfds")
    monkeypatch.setattr(tfds, "builder", lambda name, data_dir=None: builder)
    table = tfds_to_table("local_tone_set", tmp_path / "written")
    lines = table.read_text().splitlines()
    assert lines[0] == "path,label,split" and len(lines) == 15 and sum(line.endswith(",test") for line in lines) == 4
    splits = load_audio_splits(str(table), table=True, validation_fraction=0.2, seed=0)
    assert [len(splits.paths[s]) for s in ("train", "validation", "test")] == [8, 2, 4]  # no validation split: 20% of train
    assert splits.class_names == ["high", "low"] and splits.report["resampled_from"] == {"8000": 14}
    assert tfds_to_table("local_tone_set", tmp_path / "written") == table  # written once
