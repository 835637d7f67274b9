"""Labelled texts from files: a folder of `.txt` files per class, or one CSV, TSV or JSON Lines file.

Every source gives a `LabelledTexts`: the texts, their label names and the
problems met while reading (file and line of each text skipped, and why), so
a bad line costs that line, never the run. Files are read one line at a time;
only the kept texts are held (a few million short sentences fit in memory;
the files' raw bytes never do all at once).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path

from tl_keras.config.settings import ConfigError
from tl_keras.data.splits import split_folders_inside

TEXT_FILE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "tsv"}
# Column names tried, in order, when --text_column / --label_column are empty.
TEXT_COLUMNS = ("text", "sentence", "review", "content", "document", "body")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "sentiment")
UNDECODABLE_LIMIT = 10  # lines that are not UTF-8 a file may hold (skipped, each named) before it is refused as another encoding
# The longest field the csv module accepts: a long document in one cell is a document, not an attack.
csv.field_size_limit(1 << 27)


@dataclasses.dataclass
class LabelledTexts:
    """Texts with label names, and what was skipped while reading them (one line each: `file:line: why`)."""

    texts: list[str]
    labels: list[str]
    problems: list[str] = dataclasses.field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.texts)


def read_text_source(path: str | os.PathLike, *, text_column: str = "", label_column: str = "") -> LabelledTexts:
    """A folder of class sub-folders (`read_text_folder`) or one table file (`read_text_file`)."""
    path = Path(path)
    if path.is_dir():
        return read_text_folder(path)
    return read_text_file(path, text_column=text_column, label_column=label_column)


def read_text_folder(folder: str | os.PathLike) -> LabelledTexts:
    """One sub-folder per class, one document per `.txt` file (Keras's `text_dataset_from_directory` layout).

    Raises:
        ValueError: the folder has fewer than two class sub-folders, or its sub-folders are splits (train/, test/).
    """
    folder = Path(folder)
    layout = split_folders_inside(folder, "text_dir", "--text_dir", {"validation": "--validation_file", "test": "--test_file"})
    if layout:
        raise ValueError(layout)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise ValueError(f"text_dir={str(folder)!r}: found {len(classes)} class sub-folders; a classifier needs at least two")
    result = LabelledTexts([], [], source=str(folder))
    for name in classes:
        for file in sorted((folder / name).rglob("*.txt")):
            text, why = _decode(file.read_bytes())
            if why is None and not text.strip():
                why = "empty text"
            if why:
                result.problems.append(f"{file}: {why}; skipped")
                continue
            result.texts.append(text.strip())
            result.labels.append(name)
    return result


def read_text_file(path: str | os.PathLike, *, text_column: str = "", label_column: str = "") -> LabelledTexts:
    """Rows of a CSV, TSV or JSON Lines file (by suffix); the header is detected, or the columns named.

    A file with no header row takes its first column as the text and its
    last as the label (the `sentence<TAB>label` layout). Rows that cannot be
    decoded as UTF-8, lack a text or a label, or hold an empty text are
    reported and skipped.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown suffix, or a named column the header lacks.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text_file={str(path)!r}: file not found")
    kind = TEXT_FILE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"text_file={str(path)!r}: unknown suffix {path.suffix!r}; use one of {', '.join(sorted(TEXT_FILE_SUFFIXES))}")
    result = LabelledTexts([], [], source=str(path))
    rows = _json_rows(path, result) if kind == "jsonl" else _table_rows(path, "\t" if kind == "tsv" else ",", result)
    text_key, label_key = None, None
    for line, row in rows:
        if text_key is None:
            text_key, label_key = _pick_columns(path, row, text_column, label_column)
        text, label = _field(row, text_key), _field(row, label_key)
        if label is None or not str(label).strip():
            result.problems.append(f"{path}:{line}: missing label; skipped")
        elif text is None or not str(text).strip():
            result.problems.append(f"{path}:{line}: empty text; skipped")
        else:
            result.texts.append(str(text).strip())
            result.labels.append(str(label).strip())
    return result


def _decode(raw: bytes) -> tuple[str, str | None]:
    """UTF-8 text, or the reason it is not text (binary, another encoding)."""
    if b"\x00" in raw:
        return "", "binary content (NUL bytes), not text"
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        return "", f"not UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start}); re-save it as UTF-8"


def _lines(path: Path, result: LabelledTexts, keep_blank: bool = False):
    """(line number, decoded line) for every line of `path`; undecodable lines are reported, not yielded.

    Raises:
        ConfigError: more than `UNDECODABLE_LIMIT` lines, and over 1% of them, are not UTF-8: the file is in another
            encoding, and skipping those lines would drop exactly the texts with accents.
    """
    bad, number = [], 0  # the numbers of the undecodable lines
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            text, why = _decode(raw)
            if why:
                bad.append(number)
                result.problems.append(f"{path}:{number}: {why}; skipped")
                continue
            if keep_blank or text.strip():
                yield number, text
    if len(bad) > UNDECODABLE_LIMIT and len(bad) > 0.01 * number:
        raise ConfigError(f"{path}: {len(bad)} of {number} lines are not UTF-8 (the first is line {bad[0]}); the file is in another "
                          "encoding, and skipping them would drop the texts with accents: re-save it as UTF-8 "
                          "(e.g. iconv -f cp1252 -t utf-8)")


def _table_rows(path: Path, delimiter: str, result: LabelledTexts):
    """(first line, row) pairs; the first row is a header when it names a known text or label column.

    One csv reader over the whole file, so a quoted CSV field may hold
    newlines (as spreadsheets write them); TSV fields are never quoted.
    """
    consumed: list[int] = []

    def feed():
        for number, line in _lines(path, result, keep_blank=True):
            consumed.append(number)
            yield line

    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    header: list[str] | None = None
    first_row = True
    for row in csv.reader(feed(), delimiter=delimiter, quoting=quoting):
        number = consumed[0] if consumed else 0  # the row's first line: a quoted field may span several
        consumed.clear()
        if not any(cell.strip() for cell in row):
            continue
        if first_row:
            first_row = False
            lowered = [cell.strip().lower() for cell in row]
            if any(name in lowered for name in TEXT_COLUMNS + LABEL_COLUMNS):
                header = lowered
                continue
        yield number, dict(zip(header, row)) if header else row


def _json_rows(path: Path, result: LabelledTexts):
    for number, line in _lines(path, result):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            result.problems.append(f"{path}:{number}: not JSON ({error.msg}); skipped")
            continue
        if not isinstance(row, dict):
            result.problems.append(f"{path}:{number}: a JSON line must be an object with a text and a label; skipped")
            continue
        yield number, {str(k).lower(): v for k, v in row.items()}


def _pick_columns(path: Path, row, text_column: str, label_column: str):
    """Keys (dict rows) or positions (list rows) of the text and the label."""
    if isinstance(row, list):
        if text_column or label_column:
            raise ValueError(f"text_file={str(path)!r} has no header row, so text_column/label_column cannot name a column")
        return 0, -1
    keys = list(row)

    def pick(named: str, candidates: tuple[str, ...], what: str):
        if named:
            if named.lower() not in keys:
                raise ValueError(f"{what}={named!r}: {str(path)!r} has no such column; its columns: {keys}")
            return named.lower()
        for candidate in candidates:
            if candidate in keys:
                return candidate
        raise ValueError(f"{what}: {str(path)!r} has no column named like {candidates[0]!r}; name it (columns: {keys})")

    return pick(text_column, TEXT_COLUMNS, "text_column"), pick(label_column, LABEL_COLUMNS, "label_column")


def _field(row, key):
    if isinstance(row, list):
        if len(row) < 2:
            return None
        return row[key]
    return row.get(key)
