"""Which rows the simple baselines (TF-IDF, MFCC) see: every row, a seeded sample past a size, or none.

A baseline is there to say what the model must beat, not to cost what the
model costs: at millions of rows the TF-IDF bigram fit alone takes hours
and tens of GB. So `--baselines=auto` fits on every row up to
`BASELINE_ROWS` training rows and, past that, on a seeded sample of that
many rows per split, with one fit instead of a search over strengths;
`all` always uses every row and searches; `none` skips them. The summary
records which rows were used, so a sampled baseline is never mistaken for
a full one.
"""

from __future__ import annotations

import dataclasses

import numpy as np

BASELINE_ROWS = 50_000


@dataclasses.dataclass(frozen=True)
class BaselineRows:
    """The rows of each split a baseline uses (None: all of them)."""

    skip: bool
    rows: dict[str, np.ndarray | None]

    @property
    def sampled(self) -> bool:
        return any(picked is not None for picked in self.rows.values())

    def take(self, split: str, values):
        """`values` (a list or an array, one entry per example of `split`) restricted to the baseline's rows."""
        picked = self.rows.get(split)
        if picked is None:
            return values
        if isinstance(values, np.ndarray):
            return values[picked]
        return [values[i] for i in picked]

    def record(self, sizes: dict[str, int]) -> dict:
        """What goes beside the baseline's scores in summary.json."""
        used = {split: int(size if self.rows.get(split) is None else len(self.rows[split])) for split, size in sizes.items()}
        return {"rows": used, "sampled": self.sampled}


def baseline_rows(mode: str, sizes: dict[str, int], seed: int = 0, limit: int = BASELINE_ROWS) -> BaselineRows:
    """The plan for `--baselines=mode` over splits of `sizes` (split -> examples); samples are sorted, seeded per split."""
    if mode == "none":
        return BaselineRows(skip=True, rows={})
    if mode == "all" or sizes.get("train", 0) <= limit:
        return BaselineRows(skip=False, rows={split: None for split in sizes})
    rows = {}
    for index, (split, size) in enumerate(sorted(sizes.items())):
        rows[split] = None if size <= limit else np.sort(np.random.default_rng([seed, index]).choice(size, limit, replace=False))
    return BaselineRows(skip=False, rows=rows)


def sampled_note(result: dict) -> str:
    """', on a seeded sample of N training rows' for a sampled baseline's log line and table row; '' otherwise."""
    if not result.get("sampled"):
        return ""
    return f", on a seeded sample of {result['rows']['train']:,} training rows"
