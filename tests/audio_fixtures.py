"""Real WAV files written in a test: three classes of tones a small model can tell apart, in the formats users bring."""

from pathlib import Path

import numpy as np

PITCHES = {"low": 300.0, "mid": 900.0, "high": 2400.0}


def tone(pitch: float, seconds: float, rate: int, rng: np.random.Generator, loudness: float = 0.4) -> np.ndarray:
    """A rising-and-falling tone near `pitch` with a little noise: one 'word' of its class."""
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.sin(np.pi * t / seconds) ** 2
    wobble = pitch * (1 + 0.03 * rng.standard_normal())
    return (loudness * envelope * np.sin(2 * np.pi * wobble * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int, *, stereo: bool = False, sample_format: str = "int16") -> Path:
    """A WAV file as recorders write them: 16-bit PCM by default, 32-bit float, or 8-bit unsigned; stereo if asked."""
    from scipy.io import wavfile

    data = np.stack([samples, samples * 0.9], axis=1) if stereo else samples
    if sample_format == "int16":
        data = (np.clip(data, -1, 1) * 32767).astype(np.int16)
    elif sample_format == "uint8":
        data = (np.clip(data, -1, 1) * 127 + 128).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, data)
    return path


def clip_folder(root: Path, per_class: int = 12, seed: int = 0) -> Path:
    """`root/<class>/<n>.wav`: `per_class` tones per class at 8, 16 and 22.05 kHz, 0.3-0.9 s, one stereo and one float file each."""
    rng = np.random.default_rng(seed)
    rates = (8000, 16000, 22050)
    for name, pitch in PITCHES.items():
        for i in range(per_class):
            rate = rates[i % 3]
            samples = tone(pitch, 0.3 + 0.6 * rng.random(), rate, rng)
            write_wav(root / name / f"{name}_{i}.wav", samples, rate, stereo=i == 1, sample_format="float32" if i == 2 else "int16")
    return root
