"""Google's speech_embedding rebuilt in Keras from its two TFLite files: the same numbers as the files, and a trainable model."""

import numpy as np
import pytest

import tl_keras  # noqa: F401
from tl_keras.audio.clips import prepare, read_wav
from tl_keras.audio.model import SpeechScale, clip_limits
from tl_keras.audio.speech_embedding import MIN_SAMPLES, load_speech_embedding
from tl_keras.config.settings import ConfigError


def _interpreter(path, resize=None):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    if resize:
        interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], resize)
    interpreter.allocate_tensors()
    return interpreter


def _run(interpreter, value):
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], value.astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_the_rebuilt_encoder_gives_the_files_numbers_on_a_real_spoken_digit(shared_assets):
    folder = shared_assets / "audio_encoders" / "speech_embedding"
    clip = sorted((shared_assets / "audio" / "fsdd" / "7").glob("*.wav"))[0]
    samples, info = read_wav(str(clip))
    wave = prepare(samples, info.rate, 16000, 19200)
    front, encoder = load_speech_embedding(str(folder))
    frames = SpeechScale()(front(wave[None])).numpy()
    reference_frames = _run(_interpreter(folder / "melspectrogram.tflite", [1, len(wave)]), wave[None] * 32768)[0, 0] / 10 + 2
    np.testing.assert_allclose(frames[0, :, :, 0], reference_frames, atol=1e-4)
    embeddings = encoder(frames).numpy()[0]
    windows = _interpreter(folder / "embedding_model.tflite")
    reference = np.stack([_run(windows, reference_frames[s:s + 76][None, :, :, None]).reshape(96)
                          for s in range(0, len(reference_frames) - 75, 8)])
    assert embeddings.shape == reference.shape == (6, 96)  # 1.2 s: one embedding every 80 ms once the first 0.775 s are heard
    np.testing.assert_allclose(embeddings, reference, atol=1e-4 * np.abs(reference).max())
    assert all(w.trainable for w in encoder.trainable_weights) and len(encoder.trainable_weights) == 39  # 20 kernels, 19 biases


def test_a_folder_without_the_files_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match="not a speech_embedding folder"):
        load_speech_embedding(str(tmp_path))
    assert clip_limits(str(tmp_path)) == (0.0, 0.0)
    (tmp_path / "melspectrogram.tflite").write_bytes(b"")
    (tmp_path / "embedding_model.tflite").write_bytes(b"")
    assert clip_limits(str(tmp_path))[0] == MIN_SAMPLES / 16000
