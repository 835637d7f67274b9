"""A CSV or TSV that names one example per row (a file) and its label: the header, the rows, and the rows that do not fit.

Image labels files and sound clip tables share this reading: the header's
names are matched case-blind against the accepted names of the file column
and the label column (and, when asked, a split column), blank rows are
passed over, and a row with another number of cells than the header is
reported by file and line instead of shifting its text into another column.
What a row *means* (which file, which checks) stays with each modality.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Sequence

from tl_keras.config.settings import ConfigError
from tl_keras.io import storage


@dataclasses.dataclass
class TableRow:
    """One non-blank row: where it is, its file, label and split cells (stripped; split lowercased, None without a split column),
    or the problem that leaves it out (its cells then empty)."""

    where: str
    file: str = ""
    label: str = ""
    split: str | None = None
    problem: str = ""


@dataclasses.dataclass
class LabelledTable:
    """The non-blank rows in file order (problems in their place, so a caller reports them in line order) and whether a split
    column was found."""

    rows: list[TableRow]
    has_split: bool


def read_labelled_table(
    path: str | Path, flag: str, file_columns: Sequence[str], label_columns: Sequence[str], *, file_noun: str, example: str,
    delimiter: str = ",", split_column: str = "",
) -> LabelledTable:
    """The rows of the table at `path` (which `flag` names), read with `delimiter`.

    (Eight parameters: the file and the words of its error, each differing between the two callers.)

    Raises:
        ConfigError: the header names no file column or no label column (both lists' first names given, and a header to add).
    """
    table = LabelledTable([], False)
    with storage.open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = [cell.strip().lower() for cell in next(reader, [])]
        file_column = next((header.index(c) for c in file_columns if c in header), None)
        label_column = next((header.index(c) for c in label_columns if c in header), None)
        if file_column is None or label_column is None:
            raise ConfigError(f"{flag}={path}: its header {header} names no {file_noun} column ({', '.join(file_columns[:3])}) and "
                              f"label column ({', '.join(label_columns[:4])}); add a header row such as {example}")
        split_at = header.index(split_column) if split_column and split_column in header else None
        table.has_split = split_at is not None
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}:{line}"
            if len(row) != len(header):
                table.rows.append(TableRow(where, problem=f"{where}: {len(row)} cells where the header has {len(header)}; skipped"))
                continue
            split = row[split_at].strip().lower() if split_at is not None else None
            table.rows.append(TableRow(where, row[file_column].strip(), row[label_column].strip(), split))
    return table
