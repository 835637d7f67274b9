"""Text classification: sources and their problems, the tokenizer, per-batch padding, and a whole run on a tiny encoder.

The quick tests build a tiny BERT (2 layers, width 16) as a keras-hub
preset in tmp_path; the real all-MiniLM-L6-v2 checkpoint in the shared
assets checks the loader against its published sentence similarities.
"""

import json

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from tl_keras.config.settings import ConfigError  # noqa: E402
from tl_keras.text import batches as batches_lib  # noqa: E402
from tl_keras.text.data import load_text_splits  # noqa: E402
from tl_keras.text.sources import read_text_file, read_text_folder  # noqa: E402
from tl_keras.text.tokenizer import TextTokenizer  # noqa: E402
from text_fixtures import NEGATIVE, POSITIVE, WORDS, sentences  # noqa: E402, F401

def test_a_table_file_reports_bad_lines_with_file_and_line_and_keeps_the_rest(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes(
        b"text,label\n"
        b"good movie,pos\n"
        b"caf\xe9 latin-1 line,neg\n"  # Latin-1, not UTF-8
        b",neg\n"  # empty text
        b"no label here,\n"
        b"\"bad, awful movie\",neg\n"
    )
    texts = read_text_file(path)
    assert texts.texts == ["good movie", "bad, awful movie"]
    assert texts.labels == ["pos", "neg"]
    assert len(texts.problems) == 3
    assert texts.problems[0].startswith(f"{path}:3: not UTF-8")
    assert texts.problems[1] == f"{path}:4: empty text; skipped"
    assert texts.problems[2] == f"{path}:5: missing label; skipped"


def test_a_quoted_csv_field_may_hold_newlines_and_rows_keep_their_first_line_number(tmp_path):
    """Spreadsheets quote a cell with line breaks; the row is one text, and a later bad row is named by its own line."""
    path = tmp_path / "export.csv"
    path.write_bytes(
        "\ufeffid,review,sentiment\r\n"
        '1,"first line, with a comma\r\n\r\nand a ""quoted"" third line",positive\r\n'
        "2,plain review,negative\r\n"
        "3,no label,\r\n".encode("utf-8")
    )
    texts = read_text_file(path)
    assert texts.texts == ['first line, with a comma\r\n\r\nand a "quoted" third line', "plain review"]
    assert texts.labels == ["positive", "negative"]
    assert texts.problems == [f"{path}:6: missing label; skipped"]


def test_a_file_in_another_encoding_is_refused_not_thinned(tmp_path):
    """Skipping every Latin-1 line would keep only the texts without accents: past a few such lines the file is refused, named."""
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,label\n" + b"caf\xe9 cr\xe8me,pos\nplain,neg\n" * 20)
    with pytest.raises(ConfigError, match=r"latin.csv: 20 of 41 lines are not UTF-8 \(the first is line 2\).*re-save it as UTF-8"):
        read_text_file(path)


def test_a_text_folder_of_split_folders_is_refused_with_the_flags_that_read_it(tmp_path):
    """aclImdb/{train,test}/{neg,pos}/*.txt read as classes would learn "train" against "test"."""
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            (tmp_path / "aclImdb" / split / label).mkdir(parents=True)
            (tmp_path / "aclImdb" / split / label / "1.txt").write_text(f"a {label} review")
    root = tmp_path / "aclImdb"
    with pytest.raises(ValueError, match=rf"text_dir={root}: its sub-folders test, train are splits holding class folders \(neg, pos\), "
                                         rf"not classes; pass --text_dir={root / 'train'} --test_file={root / 'test'}"):
        read_text_folder(root)
    assert read_text_folder(root / "train").labels == ["neg", "pos"]
    (root / "val" / "neg").mkdir(parents=True)
    with pytest.raises(ValueError, match=rf"--test_file={root / 'test'} --validation_file={root / 'val'}$"):
        read_text_folder(root)


def test_a_headerless_tsv_and_json_lines_read_the_same_rows(tmp_path):
    tsv = tmp_path / "a.tsv"
    tsv.write_text("good movie\t1\nbad movie\t0\n")
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"Sentence": "good movie", "label": 1}\n{"sentence": "bad movie", "label": 0}\nnot json\n')
    from_tsv, from_json = read_text_file(tsv), read_text_file(jsonl)
    assert (from_tsv.texts, from_tsv.labels) == (from_json.texts, from_json.labels) == (["good movie", "bad movie"], ["1", "0"])
    assert len(from_json.problems) == 1 and ":3: not JSON" in from_json.problems[0]


def test_a_text_folder_skips_binary_empty_and_latin1_files_naming_each(tmp_path):
    for label in ("neg", "pos"):
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"{i}.txt").write_text(f"{label} text {i}")
    (tmp_path / "pos" / "binary.txt").write_bytes(b"\x89PNG\x00\x00data")
    (tmp_path / "pos" / "empty.txt").write_text("  \n")
    (tmp_path / "neg" / "latin.txt").write_bytes("d\xe9j\xe0 vu".encode("latin-1"))
    texts = read_text_folder(tmp_path)
    assert sorted(texts.labels) == ["neg"] * 3 + ["pos"] * 3
    assert sorted(p.split(":")[0].rsplit("/", 1)[-1] for p in texts.problems) == ["binary.txt", "empty.txt", "latin.txt"]


def test_a_class_with_too_few_texts_stops_the_run_naming_it(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("".join(f"{t}\t{label}\n" for t, label in sentences(20)) + "lonely sentence\trare\n")
    with pytest.raises(ConfigError, match=r"\{'rare': 1\}"):
        load_text_splits(str(path), validation_fraction=0.2, test_fraction=0.0, seed=0, min_per_class=2)


def test_splits_are_stratified_seeded_and_a_separate_test_file_is_not_carved_from_train(tmp_path):
    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    train.write_text("".join(f"{t}\t{label}\n" for t, label in sentences(40)))
    test.write_text("".join(f"{t}\t{label}\n" for t, label in sentences(10, seed=1)))
    splits = load_text_splits(str(train), test_source=str(test), validation_fraction=0.25, test_fraction=0.1, seed=3)
    assert splits.class_names == ["neg", "pos"]
    assert len(splits.texts["train"]) == 30 and len(splits.texts["validation"]) == 10 and len(splits.texts["test"]) == 10
    assert splits.counts["validation"] == {"neg": 5, "pos": 5}
    again = load_text_splits(str(train), test_source=str(test), validation_fraction=0.25, test_fraction=0.1, seed=3)
    assert again.texts == splits.texts and again.record == splits.record


def test_tokens_equal_the_tokenizers_library_reading_the_same_tokenizer_json(tmp_path):
    """Our WordPiece (keras-hub) against Hugging Face's `tokenizers` on accents, emoji, CJK, URLs and contractions."""
    tokenizers = pytest.importorskip("tokenizers")
    vocab = WORDS + ["http", "##s", ":", "/", "x", "org", "東", "京", "##ie", "caf", "##e", "##é"]
    vocab = list(dict.fromkeys(vocab))
    model = tokenizers.models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]")
    reference = tokenizers.Tokenizer(model)
    reference.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    reference.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    reference.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    ours = TextTokenizer.from_folder(tmp_path, sequence_length=64)
    assert ours.lowercase and ours.strip_accents  # Hugging Face strips accents whenever it lowercases, unless told otherwise
    texts = ["Café naïve!", "Don't 😀 stop.", "東京 movie", "https://x.org/movie", "The MOVIE wasn't bad"]
    expected = [reference.encode(t, add_special_tokens=False).ids for t in texts]
    assert [row.tolist() for row in ours.word_pieces(texts)] == expected
    assert ours.piece_lengths(texts, batch_size=2).tolist() == [len(row) for row in expected]
    # Batches tokenized inside tf.data are the batches of the ids tokenized up front, padded in Python.
    labels = np.arange(len(texts)) % 2
    lengths = np.minimum(ours.piece_lengths(texts), ours.sequence_length - 2) + 2
    in_graph = batches_lib.text_training_batches(texts, lengths, labels, 2, tokenizer=ours, seed=3)
    up_front = batches_lib.training_batches(ours.encode(texts), labels, 2, pad_id=ours.pad_id, seed=3)
    for (x, y), (x2, y2) in zip(in_graph.epoch(1).as_numpy_iterator(), up_front.epoch(1).as_numpy_iterator(), strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    held = list(batches_lib.text_ordered_batches(texts, labels, 2, tokenizer=ours).as_numpy_iterator())
    assert [x.tolist() for x, _ in held] == [batches_lib.pad_batch(ours.encode(texts[i:i + 2]), ours.pad_id).tolist()
                                            for i in range(0, len(texts), 2)]


def test_the_vocabulary_is_written_into_the_run_folder_and_read_back(tmp_path):
    tokenizer = TextTokenizer(WORDS, lowercase=True, strip_accents=True, sequence_length=12)
    again = TextTokenizer.load(tokenizer.save(tmp_path / "tok"))
    assert again == tokenizer and (tmp_path / "tok" / "vocab.txt").read_text().splitlines() == WORDS
    encoded = again.encode(["the movie was very very very very very very very very very good"])[0]
    assert len(encoded) == 12 and encoded[0] == again.cls_id and encoded[-1] == again.sep_id


def test_an_epoch_is_a_function_of_seed_and_epoch_and_batches_are_padded_to_their_own_longest():
    lengths = np.random.default_rng(0).integers(3, 40, size=103)
    first = batches_lib.epoch_order(lengths, 8, seed=1, epoch=2)
    assert [b.tolist() for b in first] == [b.tolist() for b in batches_lib.epoch_order(lengths, 8, seed=1, epoch=2)]
    assert [b.tolist() for b in first] != [b.tolist() for b in batches_lib.epoch_order(lengths, 8, seed=1, epoch=3)]
    assert sorted(np.concatenate(first).tolist()) == list(range(103)) and len(first) == 13
    ids = [np.arange(1, n + 1, dtype=np.int32) for n in lengths]
    stream = batches_lib.training_batches(ids, np.zeros(103), 8, pad_id=0, seed=1)
    widths = [x.shape[1] for x, _ in stream.epoch(2).as_numpy_iterator()]
    assert widths == [int(lengths[b].max()) for b in first]
    padded_total = sum(w * len(b) for w, b in zip(widths, first))
    assert padded_total < 0.75 * lengths.max() * len(lengths)  # sorting within windows pads far less than the global maximum


def test_batches_gathered_in_the_graph_are_the_batches_a_python_loop_pads():
    """Token ids kept flat (`TokenIds`) and batched inside tf.data give, batch for batch, what padding the planned index
    lists in Python gives: the same epochs as before the ids left Python, and the same held-out order."""
    from tl_keras.text.token_ids import TokenIds

    rng = np.random.default_rng(3)
    rows = [rng.integers(5, 90, size=n).astype(np.int32) for n in rng.integers(1, 30, size=57)]
    labels = rng.integers(0, 3, size=57)
    ids = TokenIds.from_rows(rows)
    assert len(ids) == 57 and all(np.array_equal(ids[i], rows[i]) for i in (0, 20, 56)) and ids[-1].tolist() == rows[-1].tolist()
    stream = batches_lib.training_batches(ids, labels, 8, pad_id=0, seed=4)
    for epoch in (0, 3):
        got = list(stream.epoch(epoch).as_numpy_iterator())
        planned = batches_lib.epoch_order(ids.lengths, 8, seed=4, epoch=epoch)
        assert len(got) == len(planned) == stream.steps_per_epoch
        for (x, y), index in zip(got, planned):
            np.testing.assert_array_equal(x, batches_lib.pad_batch([rows[i] for i in index], 0))
            np.testing.assert_array_equal(y, labels[index])
    ordered = list(batches_lib.ordered_batches(rows, labels, 16, pad_id=7).as_numpy_iterator())
    for number, (x, y) in enumerate(ordered):
        np.testing.assert_array_equal(x, batches_lib.pad_batch(rows[16 * number:16 * number + 16], 7))
    assert sum(len(y) for _, y in ordered) == 57


@pytest.mark.slow
def test_a_text_run_trains_both_phases_evaluates_and_exports_a_model_that_serves_the_keras_probabilities(tmp_path, tiny_encoder):
    import tensorflow as tf

    from tl_keras.config.run_config import RunConfig
    from tl_keras.run import run_experiment

    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    train.write_text("sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in sentences(160)))
    test.write_text("sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in sentences(40, seed=5)))
    config = RunConfig(
        text_file=str(train), test_file=str(test), backbone=str(tiny_encoder),
        run_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "sm"),
        fine_tune_epochs=1, frozen_epochs=5, batch_size=16, fine_tune_learning_rate=1e-3, verbose=0, calibrate=True,
    )
    summary = run_experiment(config)
    assert summary["modality"] == "text" and summary["classes"] == ["neg", "pos"]
    assert set(summary["phases"]) == {"frozen", "fine_tune"} and summary["phases"]["frozen"]["on_cached_features"]
    assert summary["phases"]["fine_tune"]["epochs"] == 1  # asked for; the text recipe's 3 replaced it before
    # Two adjectives tell the class, so a working pipeline scores high even on a random tiny encoder; labels shuffled against
    # their texts, or a head on the wrong tokens, scores about 0.5. (Pretrained weights are checked on the real MiniLM below.)
    assert summary["transfer_accuracy"] >= 0.75
    assert summary["tfidf"]["accuracy"] >= 0.9
    report = (tmp_path / "run" / "evaluation" / "report.html").read_text()
    assert "Most confident mistakes" in report
    from pathlib import Path

    assert Path(summary["export"]).parent.name == tmp_path.name  # a file named train.tsv names the run after its folder
    card = json.loads((Path(summary["export"]) / "assets.extra" / "model_card.json").read_text())
    assert card["tokenizer"]["lowercase"] is True and card["tokenizer"]["sequence_length"] == summary["sequence_length"]

    import keras

    model = keras.saving.load_model(tmp_path / "run" / "model.keras", compile=False)
    tokenizer = TextTokenizer.load(tmp_path / "run" / "tokenizer")
    ids = batches_lib.pad_batch(tokenizer.encode(["the movie was good", "awful plot", ""]), tokenizer.pad_id)
    expected = model.predict(ids, verbose=0)
    loaded = tf.saved_model.load(summary["export"])
    served = loaded.signatures["token_ids"]
    out = served(input_word_ids=tf.constant(ids), input_mask=tf.constant((ids != 0).astype(np.int32)), input_type_ids=tf.zeros_like(ids))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    strings = loaded.signatures["serving_default"](text=tf.constant(["the movie was good", "awful plot", ""]))
    np.testing.assert_allclose(strings["probabilities"].numpy(), expected, atol=1e-5)

    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    evaluated = subprocess.run(  # evaluate.py scored a text run on the default flower photos before
        [sys.executable, str(repo / "experiments" / "evaluate.py"), f"--model={tmp_path / 'run'}"], capture_output=True, text=True,
        timeout=300, env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert f"test: accuracy {summary['transfer_accuracy']:.4f}" in evaluated.stdout and "Skipping variable" not in evaluated.stderr
    assert out["classes"].numpy()[0, 0].decode() in ("neg", "pos")


@pytest.mark.slow
def test_the_shared_minilm_reproduces_its_published_sentence_similarities(shared_assets):
    from tl_keras.text.encoders import load_text_encoder
    from tl_keras.text.model import MaskedMeanPooling

    encoder = load_text_encoder(str(shared_assets / "text_encoders" / "all-MiniLM-L6-v2"), sequence_length=64)
    assert encoder.pooling == "mean" and encoder.tokenizer.strip_accents
    texts = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    ids = batches_lib.pad_batch(encoder.tokenizer.encode(texts), encoder.tokenizer.pad_id)
    mask = (ids != encoder.tokenizer.pad_id).astype(np.int32)
    sequence = encoder.model({"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask})
    vectors = np.array(MaskedMeanPooling()(sequence, mask))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    np.testing.assert_allclose([similarity[0, 1], similarity[0, 2], similarity[1, 2]], [0.6660, 0.1046, 0.1411], atol=2e-3)


@pytest.mark.slow
def test_the_frozen_phase_on_cached_sentence_vectors_is_as_good_as_scikit_learns_logistic_regression(shared_assets, tmp_path):
    """An independent fit (LogisticRegressionCV on the same pooled vectors) bounds what the frozen phase should reach."""
    import keras
    from sklearn.linear_model import LogisticRegressionCV

    from tl_keras.config.run_config import RunConfig
    from tl_keras.run import run_experiment
    from tl_keras.text.run import read_splits

    split = shared_assets / "text" / "sentence_polarity" / "split"
    train, test = tmp_path / "mr" / "train.tsv", tmp_path / "mr" / "test.tsv"
    train.parent.mkdir()
    train.write_text("\n".join(split.joinpath("train.tsv").read_text(encoding="utf-8").splitlines()[:600]) + "\n", encoding="utf-8")
    test.write_text("\n".join(split.joinpath("test.tsv").read_text(encoding="utf-8").splitlines()[:500]) + "\n", encoding="utf-8")
    config = RunConfig(
        text_file=str(train), test_file=str(test), backbone=str(shared_assets / "text_encoders" / "all-MiniLM-L6-v2"),
        fine_tune_epochs=0, run_dir=str(tmp_path / "run"), export=False, verbose=0, baselines="none",
    ).resolved()
    summary = run_experiment(config)
    assert "tfidf" not in summary  # --baselines=none skips it
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", compile=False)
    extractor = keras.Model(model.input, model.get_layer("mean_pool").output)
    tokenizer = TextTokenizer.load(tmp_path / "run" / "tokenizer")
    splits = read_splits(config)

    def vectors(split_name):
        ids = batches_lib.pad_batch(tokenizer.encode(list(splits.texts[split_name])), tokenizer.pad_id)
        return extractor.predict(ids, batch_size=64, verbose=0), splits.labels[split_name]

    (train_x, train_y), (test_x, test_y) = vectors("train"), vectors("test")
    reference = LogisticRegressionCV(Cs=10, cv=5, max_iter=2000).fit(train_x, train_y).score(test_x, test_y)
    assert summary["transfer_accuracy"] >= reference - 0.01, (summary["transfer_accuracy"], reference)


@pytest.mark.slow
def test_a_text_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(tmp_path, tiny_encoder):
    import dataclasses
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import keras

    from tl_keras.config.run_config import RunConfig

    repo = Path(__file__).resolve().parents[1]
    train = tmp_path / "reviews.tsv"
    train.write_text("".join(f"{t}\t{label}\n" for t, label in sentences(160)))
    base = RunConfig(
        text_file=str(train), backbone=str(tiny_encoder), frozen_epochs=2, fine_tune_epochs=2, early_stopping_patience=0,
        batch_size=16, fine_tune_learning_rate=1e-3, dropout=0.2, export=False, verbose=0, seed=3,
    )

    def drive(name, config, *kill):
        path = tmp_path / f"{name}.json"
        path.write_text(config.to_json())
        env = {**os.environ, "PYTHONPATH": str(repo), "TF_CPP_MIN_LOG_LEVEL": "3"}
        return subprocess.run([sys.executable, str(repo / "tests" / "resume_driver.py"), str(path), *kill],
                              capture_output=True, text=True, timeout=900, env=env)

    straight = drive("straight", dataclasses.replace(base, run_dir=str(tmp_path / "straight")))
    assert straight.returncode == 0, straight.stderr[-3000:]
    history = json.loads((tmp_path / "straight" / "history.json").read_text())
    fine = next(p for p in history["phases"] if p["name"] == "fine_tune")
    second_fine_tune_epoch = fine["first_epoch"]  # history counts epochs from 1, the kill point from 0
    # Killed inside an epoch, with a state every 2 batches: the resumed run goes on after batch 2 of that epoch.
    stepped = dataclasses.replace(base, run_dir=str(tmp_path / "killed"), checkpoint_every=2)
    killed = drive("killed", stepped, f"phase:fine_tune:{second_fine_tune_epoch}:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    from tl_keras.training import resume as resume_lib

    state = resume_lib.load_state(resume_lib.state_path(tmp_path / "killed"), stepped.resolved().fingerprint())
    assert (state.phase, state.epoch, state.step) == ("fine_tune", second_fine_tune_epoch, 2)
    resumed = drive("resumed", dataclasses.replace(stepped, resume=True))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    one = keras.saving.load_model(tmp_path / "straight" / "model.keras", compile=False)
    two = keras.saving.load_model(tmp_path / "killed" / "model.keras", compile=False)
    for a, b in zip(one.weights, two.weights, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-6, err_msg=a.path)
    assert json.loads((tmp_path / "killed" / "history.json").read_text())["kept_phase"] == history["kept_phase"]


def test_python_lists_become_jsonl_files_and_bad_lists_are_refused(tmp_path):
    from tl_keras.text.tables import lists_to_files

    files = lists_to_files(tmp_path, (["good movie", "bad plot"], np.array([1, 0])), test=(["fine"], ["1"]))
    assert sorted(files) == ["test", "train"]
    assert read_text_file(files["train"]).texts == ["good movie", "bad plot"] and read_text_file(files["train"]).labels == ["1", "0"]
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        lists_to_files(tmp_path, (["a", "b"], [1]))
    with pytest.raises(ValueError, match="text 1 is a bytes"):
        lists_to_files(tmp_path, (["a", b"b"], [1, 0]))


@pytest.mark.slow
def test_a_text_run_from_python_lists(tmp_path, tiny_encoder):
    from tl_keras.text.run import run_on_texts

    rows = sentences(100)
    summary = run_on_texts(
        ([t for t, _ in rows], [label for _, label in rows]), test=([t for t, _ in sentences(20, 9)], [lab for _, lab in sentences(20, 9)]),
        run_dir=str(tmp_path / "reviews"), backbone=str(tiny_encoder), fine_tune_epochs=1, frozen_epochs=2, batch_size=16,
        export=False, verbose=0,
    )
    assert summary["classes"] == ["neg", "pos"] and summary["evaluated_on"] == "test"
    assert (tmp_path / "reviews-texts" / "train.jsonl").is_file() and (tmp_path / "reviews" / "split.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("settings", [{"compare_scratch": True, "scratch_budget": "epochs"}, {"mixed_precision": "mixed_bfloat16"},
                                      {"strategy": "mirrored"}], ids=["scratch", "mixed_bfloat16", "mirrored"])
def test_a_text_run_with_the_scratch_arm_mixed_precision_or_a_strategy(tmp_path, tiny_encoder, settings):
    import keras

    from tl_keras.config.run_config import RunConfig
    from tl_keras.run import run_experiment

    train = tmp_path / "reviews.tsv"
    train.write_text("".join(f"{t}\t{label}\n" for t, label in sentences(120)))
    config = RunConfig(
        text_file=str(train), backbone=str(tiny_encoder), run_dir=str(tmp_path / "run"), fine_tune_epochs=1, frozen_epochs=2,
        batch_size=16, export=False, verbose=0, **settings,
    )
    summary = run_experiment(config)
    assert set(summary["phases"]) == {"frozen", "fine_tune"} and 0.0 < summary["transfer_accuracy"]
    if "compare_scratch" in settings:
        assert summary["scratch_epochs"] >= 1 and summary["scratch_accuracy"] * 12 == pytest.approx(round(summary["scratch_accuracy"] * 12))
        assert summary["transfer_minus_scratch"] == pytest.approx(summary["transfer_accuracy"] - summary["scratch_accuracy"])
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", compile=False)
    assert model.get_layer("head").dtype_policy.name == "float32"  # the saved model is float32 whatever trained it
    assert keras.config.dtype_policy().name == "float32"  # the run restored the global policy


def test_the_scratch_arm_starts_from_random_weights_not_the_pretrained_ones(tiny_encoder):
    import keras

    from tl_keras.text.encoders import load_text_encoder
    from tl_keras.text.model import build_text_classifier
    from tl_keras.text.run import scratch_copy

    model = build_text_classifier(load_text_encoder(str(tiny_encoder), sequence_length=16), 2)
    keras.utils.set_random_seed(3)
    scratch = scratch_copy(model)
    pretrained = {w.path: w.numpy() for w in model.weights}
    fresh = {w.path: w.numpy() for w in scratch.weights}
    embeddings = [path for path in pretrained if "embeddings" in path and path.endswith("embeddings")]
    assert embeddings and all(not np.array_equal(pretrained[p], fresh[p]) for p in embeddings)


@pytest.mark.slow
def test_text_batches_under_op_determinism_leave_stderr_clean(shared_assets):
    """Runs enable op determinism; the batch pipeline must not make tf.data rewrite it (which logs a NodeDef error)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = f"""
import numpy as np, tensorflow as tf
tf.config.experimental.enable_op_determinism()
from tl_keras.text import batches as B
from tl_keras.text.tokenizer import TextTokenizer
tok = TextTokenizer.from_folder({str(shared_assets / "text_encoders" / "all-MiniLM-L6-v2")!r}, 64)
texts = ["a fine film", "dull and long", "the plot"] * 10
stream = B.text_training_batches(texts, np.minimum(tok.piece_lengths(texts), 62) + 2, np.zeros(30), 4, tokenizer=tok, seed=0)
print(sum(1 for _ in stream.stream(0).take(12)))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "12" and "NodeDef" not in done.stderr
