"""The WordPiece tokenizer of a BERT-family checkpoint, kept beside the model rather than inside it.

Training, evaluation and every serving graph (SavedModel, TFLite, the Hub
preprocessor) split text into pieces with one implementation: TensorFlow
Text's `FastBertTokenizer`, through `graph_tokenizer.GraphTokenizer`, run
eagerly here in batches. Two implementations proven "equal" on a test list
drifted apart on Unicode spaces and format characters (a no-break space
made its neighbour `[UNK]` in training only), so there is one.
`FastBertTokenizer` is the one that also converts to TFLite, and it
matches the checkpoint's own Hugging Face tokenizer on the cases
`docs/text.md` lists (and says where it does not).

What this module adds is reading a Hugging Face folder that has only
`tokenizer.json` (no `vocab.txt`), taking lowercasing and accent stripping
from the checkpoint's own config (`TextTokenizer.from_folder`), and `save`,
which writes the vocabulary and settings into the run folder, never into
the user's checkpoint folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

VOCAB_FILE = "vocab.txt"
SETTINGS_FILE = "tokenizer_settings.json"


@dataclasses.dataclass
class TextTokenizer:
    """Turns strings into `[CLS] pieces [SEP]` token ids, truncated to `sequence_length`."""

    vocabulary: list[str]
    lowercase: bool = True
    strip_accents: bool = True
    sequence_length: int = 128
    cls_token: str = "[CLS]"
    sep_token: str = "[SEP]"
    pad_token: str = "[PAD]"
    unk_token: str = "[UNK]"

    def __post_init__(self):
        index = {token: i for i, token in enumerate(self.vocabulary)}
        missing = [t for t in (self.cls_token, self.sep_token, self.pad_token, self.unk_token) if t not in index]
        if missing:
            raise ValueError(f"the vocabulary lacks the special tokens {missing}; is it a BERT WordPiece vocabulary?")
        self.cls_id, self.sep_id = index[self.cls_token], index[self.sep_token]
        self.pad_id, self.unk_id = index[self.pad_token], index[self.unk_token]
        self._graph = None

    @property
    def graph(self):
        """The TensorFlow Text splitter every path shares (built on first use: it builds a lookup table)."""
        if self._graph is None:
            from tl_keras.text.graph_tokenizer import GraphTokenizer

            self._graph = GraphTokenizer(self)
        return self._graph

    def word_pieces(self, texts: list[str], batch_size: int = 4096) -> list[np.ndarray]:
        """The WordPiece ids of each text, no special tokens, not truncated: exactly the pieces a serving graph produces."""
        out: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            rows = self.graph.word_pieces(list(texts[start : start + batch_size]))
            values, splits = rows.flat_values.numpy(), rows.row_splits.numpy()
            out.extend(values[splits[i] : splits[i + 1]].astype(np.int32) for i in range(len(splits) - 1))
        return out

    def piece_lengths(self, texts: list[str], batch_size: int = 4096) -> np.ndarray:
        """How many WordPiece ids each text has (no special tokens, not truncated), keeping none of the ids."""
        lengths = [self.graph.word_pieces(list(texts[start : start + batch_size])).row_lengths().numpy()
                   for start in range(0, len(texts), batch_size)]
        return np.concatenate(lengths).astype(np.int32) if lengths else np.zeros(0, np.int32)

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """`[CLS] pieces [SEP]` per text, the pieces truncated so the whole fits `sequence_length`."""
        room = self.sequence_length - 2
        return [np.concatenate([[self.cls_id], row[:room], [self.sep_id]]).astype(np.int32) for row in self.word_pieces(texts)]

    def vocabulary_sha256(self) -> str:
        return hashlib.sha256("\n".join(self.vocabulary).encode()).hexdigest()

    def facts(self) -> dict:
        """What a caller tokenising for this model must do the same way (for the model card)."""
        return {
            "vocabulary_size": len(self.vocabulary), "vocabulary_sha256": self.vocabulary_sha256(), "lowercase": self.lowercase,
            "strip_accents": self.strip_accents, "sequence_length": self.sequence_length, "cls_id": self.cls_id, "sep_id": self.sep_id,
            "pad_id": self.pad_id, "unk_id": self.unk_id,
        }

    def save(self, folder: str | os.PathLike) -> Path:
        """Writes `vocab.txt` (one token per line, in id order) and the settings; returns the folder."""
        from tl_keras.io import atomic

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic.write_text(folder / VOCAB_FILE, "\n".join(self.vocabulary) + "\n")
        settings = {k: v for k, v in dataclasses.asdict(self).items() if k != "vocabulary"}
        atomic.write_json(folder / SETTINGS_FILE, settings)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "TextTokenizer":
        """Reads what `save` wrote."""
        folder = Path(folder)
        settings = json.loads((folder / SETTINGS_FILE).read_text())
        return cls(_read_vocab_txt(folder / VOCAB_FILE), **settings)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, sequence_length: int = 128) -> "TextTokenizer":
        """The tokenizer of a checkpoint folder: Hugging Face (`vocab.txt` or `tokenizer.json`) or keras-hub preset.

        Lowercasing and accent stripping come from the folder's own config
        (`tokenizer.json`'s normalizer, `tokenizer_config.json`, or the
        keras-hub tokenizer config); Hugging Face strips accents whenever it
        lowercases unless told otherwise, and so do we.

        Raises:
            FileNotFoundError: the folder holds no WordPiece vocabulary.
        """
        folder = Path(folder)
        lowercase, strip = _case_settings(folder)
        for candidate in (folder / VOCAB_FILE, folder / "assets" / "tokenizer" / "vocabulary.txt"):
            if candidate.is_file():
                return cls(_read_vocab_txt(candidate), lowercase, strip, sequence_length)
        tokenizer_json = folder / "tokenizer.json"
        if tokenizer_json.is_file():
            model = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("model", {})
            if model.get("type") == "WordPiece":
                vocab = sorted(model["vocab"].items(), key=lambda item: item[1])
                if [i for _, i in vocab] != list(range(len(vocab))):
                    raise ValueError(f"{tokenizer_json}: the WordPiece vocabulary's ids are not 0..N-1")
                return cls([token for token, _ in vocab], lowercase, strip, sequence_length)
            raise ValueError(f"{tokenizer_json}: a {model.get('type')!r} tokenizer; only BERT-style WordPiece is supported")
        raise FileNotFoundError(f"backbone={str(folder)!r}: no vocab.txt, tokenizer.json or keras-hub tokenizer vocabulary inside")


def _read_vocab_txt(path: Path) -> list[str]:
    return [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines()]


def _case_settings(folder: Path) -> tuple[bool, bool]:
    """(lowercase, strip_accents) as the checkpoint's own tokenizer config says; uncased BERT's when it says nothing."""
    lowercase, strip = True, None
    config = folder / "tokenizer_config.json"
    if config.is_file():
        values = json.loads(config.read_text(encoding="utf-8"))
        lowercase = bool(values.get("do_lower_case", lowercase))
        strip = values.get("strip_accents", strip)
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.is_file():
        normalizer = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("normalizer") or {}
        if normalizer.get("type") == "BertNormalizer":
            lowercase = bool(normalizer.get("lowercase", lowercase))
            strip = normalizer.get("strip_accents", strip)
    hub_config = folder / "tokenizer.json"
    if not config.is_file() and hub_config.is_file():  # a keras-hub preset's tokenizer.json is a Keras layer config
        layer = json.loads(hub_config.read_text(encoding="utf-8")).get("config", {})
        if "lowercase" in layer:
            lowercase = bool(layer["lowercase"])
            strip = layer.get("strip_accents", strip)
    return lowercase, lowercase if strip is None else bool(strip)
