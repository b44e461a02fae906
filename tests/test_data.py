import pandas as pd
import pytest

from adaptune.data import DataError, SplitSettings, make_splits, read_raw_dataset, write_splits
from conftest import LABELS, REPO, write_raw_csv

# Splits drawn from the whole pool; the tests of the reference split turn exclusion on.
SMALL = SplitSettings(train=24, val=12, test=12, seed=3, exclude_reference=False)


def test_splits_are_balanced_disjoint_and_sized(raw_csv):
    splits = make_splits(raw_csv, LABELS, SMALL)
    assert {name: len(frame) for name, frame in splits.items()} == {"train": 24, "val": 12, "test": 12}
    for frame in splits.values():
        assert frame["label"].value_counts().to_dict() == {label: len(frame) // 3 for label in LABELS}
    texts = [set(frame["text"]) for frame in splits.values()]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])


def test_uneven_sizes_differ_by_at_most_one_per_class(raw_csv):
    splits = make_splits(raw_csv, LABELS, SplitSettings(train=10, val=4, test=5, exclude_reference=False))
    for frame in splits.values():
        counts = frame["label"].value_counts()
        assert counts.max() - counts.min() <= 1


def test_same_seed_same_splits_other_seed_other_splits(raw_csv):
    first = make_splits(raw_csv, LABELS, SMALL)["train"]
    again = make_splits(raw_csv, LABELS, SMALL)["train"]
    other = make_splits(raw_csv, LABELS, SplitSettings(train=24, val=12, test=12, seed=4, exclude_reference=False))["train"]
    pd.testing.assert_frame_equal(first, again)
    assert list(first["id"]) != list(other["id"])


def test_html_entities_are_decoded_and_labels_named(raw_csv):
    train = make_splits(raw_csv, LABELS, SMALL)["train"]
    assert not train["text"].str.contains("&amp;").any()
    assert train["text"].str.contains(" & ").all()
    assert set(train["label"]) == set(LABELS)


def test_duplicate_tweets_never_land_in_two_splits(tmp_path):
    duplicate = '999,3,0,0,3,2,"lovely weather today &amp; more #0"\n'
    raw = write_raw_csv(tmp_path / "raw.csv", per_class=8, extra_rows=duplicate)
    splits = make_splits(raw, LABELS, SplitSettings(train=12, val=6, test=6, exclude_reference=False))
    texts = pd.concat(splits.values())["text"]
    assert texts.is_unique


def test_too_few_rows_is_an_error_not_a_shrink(raw_csv):
    with pytest.raises(DataError, match=r"class 'hate' has 40 distinct tweets, but the splits need 50"):
        make_splits(raw_csv, LABELS, SplitSettings(train=90, val=30, test=30, exclude_reference=False))


@pytest.mark.parametrize("content, message", [
    (",count,hate_speech,offensive_language,neither,tweet\n0,3,0,0,3,hi\n", "missing column.*class"),
    (",count,hate_speech,offensive_language,neither,class,tweet\n0,3,0,0,3,7,hi\n", "line 2: class '7' is not one of 0, 1, 2"),
    ("", "empty"),
    (",count,hate_speech,offensive_language,neither,class,tweet\n", "no rows"),
])
def test_bad_raw_files_are_refused_with_the_file_named(tmp_path, content, message):
    path = tmp_path / "labeled_data.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as error:
        read_raw_dataset(path)
    assert str(path) in str(error.value)


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "labeled_data.csv"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataError, match="binary"):
        read_raw_dataset(path)


def test_reference_split_is_used_exactly_and_test_avoids_it(raw_csv, tmp_path):
    pool = make_splits(raw_csv, LABELS, SplitSettings(train=30, val=9, test=3, exclude_reference=False))
    train_ref, val_ref = tmp_path / "train.csv", tmp_path / "val.csv"
    pool["train"][["label", "text"]].to_csv(train_ref, index=False)
    pool["val"][["label", "text"]].to_csv(val_ref, index=False)
    settings = SplitSettings(test=12, reference={"enabled": True})
    splits = make_splits(raw_csv, LABELS, settings, {"train": train_ref, "val": val_ref})
    assert list(splits["train"]["text"]) == list(pool["train"]["text"])
    assert list(splits["val"]["text"]) == list(pool["val"]["text"])
    assert len(splits["test"]) == 12
    assert not set(splits["test"]["text"]) & (set(pool["train"]["text"]) | set(pool["val"]["text"]))


def test_reference_split_with_unknown_label_names_the_row(raw_csv, tmp_path):
    bad = tmp_path / "train.csv"
    bad.write_text("label,text\nhate,a\nspam,b\n")
    settings = SplitSettings(reference={"enabled": True})
    with pytest.raises(DataError, match=r"train.csv: row 3: label 'spam'"):
        make_splits(raw_csv, LABELS, settings, {"train": bad, "val": bad})


def test_sampled_splits_leave_out_the_reference_tweets_matched_after_unescaping(raw_csv, tmp_path):
    whole = make_splits(raw_csv, LABELS, SplitSettings(train=30, val=9, test=3, exclude_reference=False))
    train_ref, val_ref = tmp_path / "train.csv", tmp_path / "val.csv"
    # The reference files keep the HTML entities; the pool's texts are unescaped.
    escaped = whole["train"]["text"].str.replace("&", "&amp;", regex=False)
    pd.DataFrame({"label": whole["train"]["label"], "text": escaped}).to_csv(train_ref, index=False)
    whole["val"][["label", "text"]].to_csv(val_ref, index=False)
    splits = make_splits(raw_csv, LABELS, SplitSettings(train=24, val=24, test=24),
                         {"train": train_ref, "val": val_ref})
    reference = set(whole["train"]["text"]) | set(whole["val"]["text"])
    for frame in splits.values():
        assert not set(frame["text"]) & reference
    with pytest.raises(DataError, match="reference split's train and val"):
        make_splits(raw_csv, LABELS, SplitSettings(train=24, val=24, test=24))


def test_raw_tweets_keep_their_html_entities(raw_csv):
    train = make_splits(raw_csv, LABELS, SplitSettings(train=24, val=12, test=12, unescape_html=False,
                                                       exclude_reference=False))["train"]
    assert train["text"].str.contains("&amp;").all()


def test_write_splits_writes_all_three(raw_csv, tmp_path):
    splits = make_splits(raw_csv, LABELS, SMALL)
    paths = {name: tmp_path / "out" / f"{name}.csv" for name in splits}
    write_splits(splits, paths)
    for name, path in paths.items():
        assert pd.read_csv(path).columns.tolist() == ["id", "text", "label"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["test.csv", "train.csv", "val.csv"]


SHARED = REPO.parents[1] / "shared" / "data"
REAL = [REPO / "data" / "labeled_data.csv", REPO.parent / "shared" / "data" / "labeled_data.csv",
        SHARED / "labeled_data.csv"]
REFERENCE = {"train": SHARED / "reference_split" / "train.csv", "val": SHARED / "reference_split" / "val.csv"}


@pytest.mark.skipif(not any(p.exists() for p in REAL), reason="labeled_data.csv not placed in data/")
def test_default_sizes_on_the_real_dataset():
    raw = next(p for p in REAL if p.exists())
    splits = make_splits(raw, LABELS, SplitSettings(exclude_reference=False))
    assert {n: len(f) for n, f in splits.items()} == {"train": 1000, "val": 200, "test": 600}
    for frame in splits.values():
        counts = frame["label"].value_counts()
        assert counts.max() - counts.min() <= 1
    assert pd.concat(splits.values())["text"].is_unique


def test_download_checks_the_pinned_checksum(raw_csv, tmp_path):
    import functools
    import hashlib
    import http.server
    import threading

    from adaptune.data import download_dataset

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(raw_csv.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{raw_csv.name}"
        good = hashlib.sha256(raw_csv.read_bytes()).hexdigest()
        target = tmp_path / "data" / "labeled_data.csv"
        with pytest.raises(DataError, match="sha256 is .*, expected 0000"):
            download_dataset(url, "0" * 64, target)
        assert not target.exists() and not list(target.parent.glob("*"))
        download_dataset(url, good, target)
        assert target.read_bytes() == raw_csv.read_bytes()
        with pytest.raises(DataError, match="could not download .* put the file at"):
            download_dataset(url + ".missing", good, tmp_path / "other.csv")
    finally:
        server.shutdown()


@pytest.mark.skipif(not (any(p.exists() for p in REAL) and all(p.exists() for p in REFERENCE.values())),
                    reason="labeled_data.csv or the reference split is not in /work/shared/data")
def test_default_splits_share_no_tweet_with_the_reference_split():
    """The default splits (config.yaml) on the real files: no tweet of the reference study's
    train or val, compared after HTML unescaping, is in any sampled split."""
    import html

    import yaml

    raw = next(p for p in REAL if p.exists())
    section = yaml.safe_load((REPO / "config.yaml").read_text())["splits"]
    splits = make_splits(raw, LABELS, SplitSettings.from_config(section), REFERENCE)
    reference = set()
    for path in REFERENCE.values():
        reference |= set(pd.read_csv(path, keep_default_na=False)["text"].map(html.unescape))
    assert len(reference) > 1000
    assert {n: len(f) for n, f in splits.items()} == {"train": 1000, "val": 200, "test": 600}
    for frame in splits.values():
        assert not set(frame["text"].map(html.unescape)) & reference
