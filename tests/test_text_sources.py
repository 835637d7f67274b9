"""Table files never mislabel a row: cell counts checked, headers found or named, labels that are one value, quotes read right."""

import json

import pytest

from tl_keras.text.sources import read_text_file


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_a_row_with_an_extra_cell_is_skipped_and_named_not_shifted_into_the_label(tmp_path):
    path = write(tmp_path / "r.csv", "text,label\ngood film,pos\nI liked it, a lot,pos\nbad plot,neg\n")
    texts = read_text_file(path)
    assert texts.texts == ["good film", "bad plot"] and texts.labels == ["pos", "neg"]
    assert texts.problems == [f"{path}:3: 3 cells where the header's 2 (an unquoted comma in a text? quote it); skipped"]


def test_a_stray_tab_in_a_tsv_row_is_skipped_too(tmp_path):
    path = write(tmp_path / "r.tsv", "sentence\tlabel\ngood\t1\nbad\tmovie\t0\nfine\t1\n")
    texts = read_text_file(path)
    assert texts.labels == ["1", "1"] and "r.tsv:3: 3 cells" in texts.problems[0]


def test_a_headerless_file_of_three_columns_is_refused_rather_than_trained_on_its_ids(tmp_path):
    path = write(tmp_path / "r.csv", "1,good film,pos\n2,bad plot,neg\n3,fine,pos\n")
    with pytest.raises(ValueError, match=r"3 columns and no header naming the text and the label \(first row: 1, good film, pos\)"):
        read_text_file(path)
    numbered = read_text_file(path, text_column="2", label_column="3")
    assert numbered.texts == ["good film", "bad plot", "fine"] and numbered.labels == ["pos", "neg", "pos"]


def test_an_unknown_header_is_read_as_a_header_once_its_columns_are_named(tmp_path):
    path = write(tmp_path / "toxic.csv", "id,comment_text,toxic\n1,you are great,0\n2,you are awful,1\n3,nice,0\n")
    with pytest.raises(ValueError, match="if that row is a header, name the columns"):
        read_text_file(path)
    named = read_text_file(path, text_column="comment_text", label_column="toxic")
    assert named.texts == ["you are great", "you are awful", "nice"] and named.labels == ["0", "1", "0"] and not named.problems


def test_a_two_column_header_of_unknown_names_is_skipped_as_a_header_and_said(tmp_path):
    path = write(tmp_path / "r.csv", "review_body,stars\ngood film,5\nbad plot,1\nfine,5\nawful,1\n")
    texts = read_text_file(path)
    assert texts.texts == ["good film", "bad plot", "fine", "awful"]
    assert "r.csv:1: its label 'stars' occurs in no other row: a header?" in texts.problems[0]


def test_json_labels_are_one_value_and_whole_number_floats_are_the_same_class(tmp_path):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 1.0}, {"text": "c", "label": ["x", "y"]}, {"text": "d", "label": 0}]
    path = write(tmp_path / "r.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    texts = read_text_file(path)
    assert texts.labels == ["1", "1", "0"]
    assert texts.problems == [f"{path}:3: the label is a list, not one class name; skipped"]


def test_a_tsv_written_with_quotes_loses_them_and_one_with_bare_quotes_keeps_them(tmp_path):
    quoted = write(tmp_path / "q.tsv", 'text\tlabel\n"she said ""hi"" twice"\tpos\nplain\tneg\n')
    assert read_text_file(quoted).texts == ['she said "hi" twice', "plain"]
    bare = write(tmp_path / "b.tsv", 'sentence\tlabel\n" the lord of the rings " trilogy\t1\nthe " best " one\t0\n')
    assert read_text_file(bare).texts == ['" the lord of the rings " trilogy', 'the " best " one']


def test_a_changed_file_or_class_set_is_refused_against_the_recorded_split(tmp_path):
    from tl_keras.data.splits import SplitMismatchError, write_split
    from tl_keras.text.data import check_same_data, load_text_splits

    rows = "".join(f"text {i}\t{'pos' if i % 2 else 'neg'}\n" for i in range(40))
    train, test = write(tmp_path / "train.tsv", "text\tlabel\n" + rows), write(tmp_path / "test.tsv", "text\tlabel\nok\tpos\nno\tneg\n")
    record = tmp_path / "split.json"
    splits = load_text_splits(str(train), test_source=str(test))
    write_split(record, splits.record)
    check_same_data(record, load_text_splits(str(train), test_source=str(test)), fix="FIX")  # the same data passes

    write(train, "text\tlabel\n" + rows.replace("text 3\tpos", "text 3\tneg"))
    changed = rf"--text_file={train} changed \(its texts or labels differ\) since {record} was written.*, or FIX$"
    with pytest.raises(SplitMismatchError, match=changed):
        check_same_data(record, load_text_splits(str(train), test_source=str(test)), fix="FIX")
    write(train, "text\tlabel\n" + rows)
    write(test, "text\tlabel\nok\tpos\nno\tneg\nmore\tpos\n")
    with pytest.raises(SplitMismatchError, match=rf"--test_file={test} changed \(its texts"):
        check_same_data(record, load_text_splits(str(train), test_source=str(test)), fix="FIX")
    write(test, "text\tlabel\nok\tpos\nno\tbad\n")
    write(train, "text\tlabel\n" + rows.replace("\tneg", "\tbad"))
    with pytest.raises(SplitMismatchError, match="changed"):
        check_same_data(record, load_text_splits(str(train), test_source=str(test)), fix="FIX")


def test_a_text_folder_reads_txt_in_any_case_and_suffixless_files_and_names_what_it_skips(tmp_path):
    from tl_keras.text.sources import read_text_folder

    for name, files in {"sci.space": {"1": "orbit", "2.TXT": "rocket"}, "rec.autos": {"a.txt": "engine", "notes.pdf": "%PDF"}}.items():
        (tmp_path / name).mkdir()
        for file, text in files.items():
            (tmp_path / name / file).write_text(text)
    texts = read_text_folder(tmp_path)
    assert sorted(zip(texts.labels, texts.texts)) == [("rec.autos", "engine"), ("sci.space", "orbit"), ("sci.space", "rocket")]
    assert texts.problems == [f"{tmp_path}: 1 files neither .txt nor without a suffix skipped, e.g. {tmp_path}/rec.autos/notes.pdf"]
