"""Tokenization as TensorFlow ops, for graphs that take raw strings: the SavedModel's and TFLite's.

Training tokenises with this same class, run eagerly (`tokenizer.py`), so
the ids a model learned from are the ids it is served. TensorFlow Text's
`FastBertTokenizer` is used because it is the one BERT tokenizer that also
converts to TFLite (builtin ops plus TensorFlow Text's custom kernels, no
Flex ops); tests compare its ids with the checkpoint's own Hugging Face
tokenizer on every shared sentence and a list of hard characters.

The ids are built with dense ops only (pad, then place `[SEP]` after the
last real piece), so the same function serves a batch padded to its own
longest text (SavedModel) and a fixed `[1, L]` TFLite input.
"""

from __future__ import annotations

from typing import Protocol

import tensorflow as tf


class WordPieceSettings(Protocol):
    """What a tokenizer graph is built from: `tokenizer.TextTokenizer` (which calls this module, so it is not imported here)."""

    vocabulary: list[str]
    lowercase: bool
    strip_accents: bool
    sequence_length: int
    unk_token: str
    cls_id: int
    sep_id: int
    pad_id: int


def check_tflite_expressible(tokenizer: WordPieceSettings) -> None:
    """Refuses casing a TFLite graph cannot reproduce: FastBertTokenizer lowercases and strips accents together or not at all.

    (A SavedModel applies the other combinations with TensorFlow Text ops
    before it; those ops have no TFLite kernels.)

    Raises:
        ValueError: lowercase and strip_accents differ.
    """
    if tokenizer.lowercase != tokenizer.strip_accents:
        raise ValueError(
            f"the checkpoint's tokenizer has lowercase={tokenizer.lowercase}, strip_accents={tokenizer.strip_accents}; "
            "a TFLite tokenizer does both or neither, so only the token-id TFLite form can serve this model"
        )


class GraphTokenizer(tf.Module):
    """strings [N] -> int32 token ids [N, L] (`[CLS] pieces [SEP]`, truncated, padded with the pad id).

    `fixed_length` pads every row to the tokenizer's sequence length (TFLite
    wants static shapes); otherwise rows are padded to the batch's longest.
    """

    def __init__(self, tokenizer: WordPieceSettings, fixed_length: bool = False):
        super().__init__(name="graph_tokenizer")
        import tensorflow_text as tf_text  # registers the ops; serving needs it imported too

        both = tokenizer.lowercase and tokenizer.strip_accents
        self._fast = tf_text.FastBertTokenizer(
            vocab=list(tokenizer.vocabulary), token_out_type=tf.int32, unknown_token=tokenizer.unk_token,
            lower_case_nfd_strip_accents=both,
        )
        self._case_fold = tokenizer.lowercase and not both  # keras-hub's casing: Unicode case folding
        self._strip_only = tokenizer.strip_accents and not both
        self._text = tf_text
        self.cls_id, self.sep_id, self.pad_id = tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id
        self.room = tokenizer.sequence_length - 2
        self.fixed_length = fixed_length

    def word_pieces(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """strings [N] -> the WordPiece ids of each, [N, (pieces)], no special tokens, not truncated."""
        if self._case_fold:
            texts = self._text.case_fold_utf8(texts)
        if self._strip_only:
            texts = tf.strings.regex_replace(self._text.normalize_utf8(texts, "NFD"), r"\p{Mn}", "")
        pieces = self._fast.tokenize(texts)
        if pieces.ragged_rank > 1:  # some TensorFlow Text versions keep the word level
            pieces = pieces.merge_dims(-2, -1)
        return pieces

    def __call__(self, texts: tf.Tensor) -> tf.Tensor:
        pieces = self.word_pieces(texts)
        lengths = tf.minimum(tf.cast(pieces.row_lengths(), tf.int32), self.room)
        if self.fixed_length:
            body = pieces.to_tensor(default_value=self.pad_id, shape=[None, self.room])
        else:
            body = pieces.to_tensor(default_value=self.pad_id)[:, : self.room]
        rows = tf.shape(body)[0]
        cls = tf.fill([rows, 1], self.cls_id)
        tail = tf.fill([rows, 1], self.pad_id)
        ids = tf.concat([cls, body, tail], axis=1)
        positions = tf.range(tf.shape(ids)[1])[None, :]
        return tf.where(positions == (lengths + 1)[:, None], self.sep_id, ids)


def assert_utf8(texts: tf.Tensor) -> tf.Tensor:
    """`texts`, after an assertion that fails the request when any is not valid UTF-8 (naming the rows)."""
    repaired = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
    invalid = tf.not_equal(repaired, texts)
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(invalid)), ["text is not valid UTF-8 at request rows", tf.reshape(tf.where(invalid), [-1])]
    )
    with tf.control_dependencies([check]):
        return tf.identity(texts)
