"""Every text's token ids in two flat arrays (the values and where each row starts), not one array per text.

At ten million texts a Python list of ten million small NumPy arrays costs
more in object headers than in ids, and every batch is gathered from it by
a Python loop. `TokenIds` holds the same rows as a ragged pair (int32
values, int64 row splits), reads like the list it replaces (`len`, `ids[i]`,
slicing, iteration), and hands its arrays to `tf.data`, so the batches are
gathered and padded in the graph, in parallel. (A text run stores no ids
at all: it tokenizes each batch in the graph, `batches.text_training_batches`.)
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


class TokenIds:
    """Rows of token ids: row i is `values[splits[i]:splits[i + 1]]`."""

    def __init__(self, values: np.ndarray, splits: np.ndarray):
        self.values = np.asarray(values, np.int32)
        self.splits = np.asarray(splits, np.int64)

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[int]]) -> "TokenIds":
        rows = [np.asarray(r, np.int32) for r in rows]
        splits = np.zeros(len(rows) + 1, np.int64)
        np.cumsum([len(r) for r in rows], out=splits[1:])
        return cls(np.concatenate(rows) if rows else np.zeros(0, np.int32), splits)

    @classmethod
    def of(cls, ids) -> "TokenIds":
        return ids if isinstance(ids, TokenIds) else cls.from_rows(ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.splits)

    def __len__(self) -> int:
        return len(self.splits) - 1

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        return self.values[self.splits[index]:self.splits[index + 1]]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
