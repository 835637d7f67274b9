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

from tl_keras.io import storage
from tl_keras.config.settings import ConfigError
from tl_keras.data.splits import split_folders_inside

TEXT_FILE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "tsv"}
# Column names tried, in order, when --text_column / --label_column are empty.
TEXT_COLUMNS = ("text", "sentence", "review", "content", "document", "body")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "sentiment", "tags", "value", "score")
UNDECODABLE_LIMIT = 10  # lines that are not UTF-8 a file may hold (skipped, each named) before it is refused as another encoding
# The longest field the csv module accepts: a long document in one cell is a document, not an attack.
FIELD_SIZE_LIMIT = 1 << 27


@dataclasses.dataclass
class LabelledTexts:
    """Texts with label names, and what was skipped while reading them (one line each: `file:line: why`)."""

    texts: list[str]
    labels: list[str]
    problems: list[str] = dataclasses.field(default_factory=list)
    source: str = ""
    where: list[str] = dataclasses.field(default_factory=list)  # per text: `file:line` (a table) or the file (a folder)

    def __len__(self) -> int:
        return len(self.texts)


def read_text_source(path: str | os.PathLike, *, text_column: str = "", label_column: str = "") -> LabelledTexts:
    """A folder of class sub-folders (`read_text_folder`) or one table file (`read_text_file`)."""
    if storage.isdir(path):
        return read_text_folder(path)
    return read_text_file(path, text_column=text_column, label_column=label_column)


def read_text_folder(folder: str | os.PathLike) -> LabelledTexts:
    """One sub-folder per class, one document per `.txt` (or suffixless) file (Keras's `text_dataset_from_directory` layout).

    Other files are skipped and counted in one problem line, not silently.

    Raises:
        ValueError: the folder has fewer than two class sub-folders, or its sub-folders are splits (train/, test/).
    """
    folder = storage.normal(folder)
    layout = split_folders_inside(folder, "text_dir", "--text_dir", {"validation": "--validation_file", "test": "--test_file"})
    if layout:
        raise ValueError(layout)
    classes = [name for name in storage.listdir(folder) if not name.startswith(".") and storage.isdir(storage.join(folder, name))]
    if len(classes) < 2:
        raise ValueError(f"text_dir={folder!r}: found {len(classes)} class sub-folders; a classifier needs at least two")
    result = LabelledTexts([], [], source=folder)
    ignored: list[str] = []
    for name in classes:
        class_folder = storage.join(folder, name)
        files = sorted((f for f in storage.files_under(class_folder) if not storage.name_of(f).startswith(".")),
                       key=lambda f: storage.relative_parts(f, class_folder))
        ignored += [f for f in files if not _is_text_file(f)]
        for file in (f for f in files if _is_text_file(f)):
            text, why = _decode(storage.read_bytes(file))
            if why is None and not text.strip():
                why = "empty text"
            if why:
                result.problems.append(f"{file}: {why}; skipped")
                continue
            result.texts.append(text.strip())
            result.labels.append(name)
            result.where.append(file)
    if ignored:
        result.problems.append(f"{folder}: {len(ignored)} files neither .txt nor without a suffix skipped, e.g. {ignored[0]}")
    return result


def _is_text_file(path: str) -> bool:
    """A document of a class folder: `.txt` in any case, or no suffix at all (20 Newsgroups' files have none)."""
    return storage.suffix_of(path).lower() == ".txt" or not storage.suffix_of(path)


def read_text_file(path: str | os.PathLike, *, text_column: str = "", label_column: str = "") -> LabelledTexts:
    """Rows of a CSV, TSV or JSON Lines file (by suffix); the header is detected, or the columns named.

    A first row is a header when it holds a known column name (text, label,
    ...) or a name given as `text_column`/`label_column`. A file with no
    header must have two columns, the text then the label (the
    `sentence<TAB>label` layout); with more, it is refused unless the
    columns are given by number (counted from 1), since guessing trained on
    an id column. Rows whose cell count differs from the header's (an
    unquoted comma or tab inside a text), rows that cannot be decoded as
    UTF-8, and rows that lack a text or a label or hold a label that is not
    one value are reported and skipped. A label written as a whole-number
    float (`1.0`) is the same class as `1`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unknown suffix, a named column the header lacks, or a
            headerless file of more than two columns with no column named.
    """
    path = storage.normal(path)
    if not storage.isfile(path):
        raise FileNotFoundError(f"text_file={path!r}: file not found")
    suffix = storage.suffix_of(path)
    kind = TEXT_FILE_SUFFIXES.get(suffix.lower())
    if kind is None:
        raise ValueError(f"text_file={path!r}: unknown suffix {suffix!r}; use one of {', '.join(sorted(TEXT_FILE_SUFFIXES))}")
    result = LabelledTexts([], [], source=path)
    named = tuple(c.strip().lower() for c in (text_column, label_column) if c and not c.strip().isdigit())
    if kind == "jsonl":
        rows = _json_rows(path, result)
    else:
        rows = _table_rows(path, "\t" if kind == "tsv" else ",", result, named)
    text_key, label_key = None, None
    first_line, first_label, first_text = None, None, ""
    for line, row in rows:
        if text_key is None:
            text_key, label_key = _pick_columns(path, row, text_column, label_column)
        text, label = _field(row, text_key), _field(row, label_key)
        if isinstance(label, (list, dict)):
            result.problems.append(f"{path}:{line}: the label is a {type(label).__name__}, not one class name; skipped")
        elif label is None or not str(label).strip():
            result.problems.append(f"{path}:{line}: missing label; skipped")
        elif text is None or not str(text).strip():
            result.problems.append(f"{path}:{line}: empty text; skipped")
        else:
            if first_line is None:
                first_line, first_label, first_text = line, _label_name(label), str(text).strip()
            result.texts.append(str(text).strip())
            result.labels.append(_label_name(label))
            result.where.append(f"{path}:{line}")
    looks_like_a_name = len(first_text) <= 40 and not any(c.isspace() for c in first_text)
    if isinstance(text_key, int) and looks_like_a_name and result.labels.count(first_label) == 1 and len(result) > 2:
        # A header of names we do not know, read as data: one word for a text, and a label no other row has.
        result.problems.append(
            f"{path}:{first_line}: its label {first_label!r} occurs in no other row: a header? (name its columns with "
            "--text_column and --label_column); skipped"
        )
        index = result.labels.index(first_label)
        del result.texts[index], result.labels[index], result.where[index]
    return result


def _label_name(label) -> str:
    """A label as a class name: `1.0` and `1` are one class (JSON and spreadsheets write whole numbers either way)."""
    if isinstance(label, bool):
        return str(label)
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label).strip()


def _decode(raw: bytes) -> tuple[str, str | None]:
    """UTF-8 text, or the reason it is not text (binary, another encoding)."""
    if b"\x00" in raw:
        return "", "binary content (NUL bytes), not text"
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        return "", f"not UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start}); re-save it as UTF-8"


def _lines(path: str, result: LabelledTexts, keep_blank: bool = False):
    """(line number, decoded line) for every line of `path`; undecodable lines are reported, not yielded.

    Raises:
        ConfigError: more than `UNDECODABLE_LIMIT` lines, and over 1% of them, are not UTF-8: the file is in another
            encoding, and skipping those lines would drop exactly the texts with accents.
    """
    bad, number = [], 0  # the numbers of the undecodable lines
    with storage.binary_lines(path) as handle:
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


def _table_rows(path: str, delimiter: str, result: LabelledTexts, named: tuple[str, ...] = ()):
    """(first line, row) pairs: dicts by header name when the first row is a header, else lists of cells.

    One csv reader over the whole file, so a quoted CSV field may hold
    newlines (as spreadsheets write them). A TSV file is read with quotes
    only when its quoted cells are well formed (pandas writes them so);
    otherwise a quote is part of the text. A row with another cell count
    than the first row's is reported and skipped: zipping it to the header
    shifted text into the label.
    """
    consumed: list[int] = []

    def feed():
        for number, line in _lines(path, result, keep_blank=True):
            consumed.append(number)
            yield line

    # Raised when a file is read, not when the module is imported (the limit is the csv module's, process-wide).
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
    quoting = csv.QUOTE_MINIMAL if delimiter == "," or _tsv_is_quoted(path) else csv.QUOTE_NONE
    header: list[str] | None = None
    width = None
    for row in csv.reader(feed(), delimiter=delimiter, quoting=quoting):
        number = consumed[0] if consumed else 0  # the row's first line: a quoted field may span several
        consumed.clear()
        if not any(cell.strip() for cell in row):
            continue
        if width is None:
            width = len(row)
            lowered = [cell.strip().lower() for cell in row]
            if any(name in lowered for name in TEXT_COLUMNS + LABEL_COLUMNS + named):
                header = lowered
                continue
        if len(row) != width:
            what = "the header's" if header else "the first row's"
            result.problems.append(
                f"{path}:{number}: {len(row)} cells where {what} {width} (an unquoted {'comma' if delimiter == ',' else 'tab'} in a "
                "text? quote it); skipped"
            )
            continue
        yield number, dict(zip(header, row)) if header else row


def _tsv_is_quoted(path: str, lines: int = 2000) -> bool:
    """Whether a TSV file's cells that open with a quote are all CSV-quoted whole (`"a ""b"" c"`), and there is one."""
    seen = False
    with storage.binary_lines(path) as handle:
        for number, raw in enumerate(handle):
            if number >= lines:
                break
            line = raw.decode("utf-8", errors="replace")
            for cell in line.rstrip("\r\n").split("\t"):
                if not cell.startswith('"'):
                    continue
                inner = cell[1:-1]
                if len(cell) < 2 or not cell.endswith('"') or inner.replace('""', "").count('"'):
                    return False
                seen = True
    return seen


def _json_rows(path: str, result: LabelledTexts):
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


def _pick_columns(path: str, row, text_column: str, label_column: str):
    """Keys (dict rows) or positions (list rows) of the text and the label.

    Raises:
        ValueError: a named column is absent, or a headerless row has more than two cells and no column numbers were given.
    """
    if isinstance(row, list):
        positions = [c.strip() for c in (text_column, label_column)]
        if all(p.isdigit() and 1 <= int(p) <= len(row) for p in positions):
            return int(positions[0]) - 1, int(positions[1]) - 1
        if text_column or label_column:
            raise ValueError(
                f"text_file={str(path)!r} has no header row naming {text_column or label_column!r}; give both columns by number "
                f"(--text_column=2 --label_column=3, counted from 1; its rows have {len(row)} cells) or add a header row"
            )
        if len(row) > 2:
            raise ValueError(
                f"text_file={str(path)!r}: {len(row)} columns and no header naming the text and the label (first row: "
                f"{', '.join(c[:20] for c in row)}); if that row is a header, name the columns (--text_column=NAME "
                "--label_column=NAME), else give them by number (--text_column=2 --label_column=3, counted from 1)"
            )
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
