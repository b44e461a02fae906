import os

import pandas as pd
import pytest

from adaptune.data.splits import (
    DataError,
    SplitSettings,
    make_splits,
    near_duplicates,
    read_raw_dataset,
    text_key,
    write_splits,
)
from conftest import LABELS, REPO, write_raw_csv

# Splits drawn from the whole pool; the tests of the reference split turn exclusion on.
SMALL = SplitSettings(train=24, val=12, test=12, seed=3, exclude_reference=False)


def test_splits_are_balanced_disjoint_and_sized(raw_csv):
    splits = make_splits(raw_csv, LABELS, SMALL)
    assert {name: len(frame) for name, frame in splits.items()} == {
        "train": 24,
        "val": 12,
        "test": 12,
    }
    for frame in splits.values():
        assert frame["label"].value_counts().to_dict() == {
            label: len(frame) // 3 for label in LABELS
        }
    texts = [set(frame["text"]) for frame in splits.values()]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])


def test_uneven_sizes_differ_by_at_most_one_per_class(raw_csv):
    splits = make_splits(
        raw_csv, LABELS, SplitSettings(train=10, val=4, test=5, exclude_reference=False)
    )
    for frame in splits.values():
        counts = frame["label"].value_counts()
        assert counts.max() - counts.min() <= 1


def test_same_seed_same_splits_other_seed_other_splits(raw_csv):
    first = make_splits(raw_csv, LABELS, SMALL)["train"]
    again = make_splits(raw_csv, LABELS, SMALL)["train"]
    other = make_splits(
        raw_csv, LABELS, SplitSettings(train=24, val=12, test=12, seed=4, exclude_reference=False)
    )["train"]
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
    splits = make_splits(
        raw, LABELS, SplitSettings(train=12, val=6, test=6, exclude_reference=False)
    )
    texts = pd.concat(splits.values())["text"]
    assert texts.is_unique


def test_too_few_rows_is_an_error_not_a_shrink(raw_csv):
    with pytest.raises(
        DataError, match=r"class 'hate' has 40 distinct tweets, but the splits need 50"
    ):
        make_splits(
            raw_csv, LABELS, SplitSettings(train=90, val=30, test=30, exclude_reference=False)
        )


@pytest.mark.parametrize(
    "content, message",
    [
        (
            ",count,hate_speech,offensive_language,neither,tweet\n0,3,0,0,3,hi\n",
            "missing column.*class",
        ),
        (
            ",count,hate_speech,offensive_language,neither,class,tweet\n0,3,0,0,3,7,hi\n",
            "line 2: class '7' is not one of 0, 1, 2",
        ),
        ("", "empty"),
        (",count,hate_speech,offensive_language,neither,class,tweet\n", "no rows"),
    ],
)
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
    pool = make_splits(
        raw_csv, LABELS, SplitSettings(train=30, val=9, test=3, exclude_reference=False)
    )
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
    whole = make_splits(
        raw_csv, LABELS, SplitSettings(train=30, val=9, test=3, exclude_reference=False)
    )
    train_ref, val_ref = tmp_path / "train.csv", tmp_path / "val.csv"
    # The reference files keep the HTML entities; the pool's texts are unescaped.
    escaped = whole["train"]["text"].str.replace("&", "&amp;", regex=False)
    pd.DataFrame({"label": whole["train"]["label"], "text": escaped}).to_csv(train_ref, index=False)
    whole["val"][["label", "text"]].to_csv(val_ref, index=False)
    splits = make_splits(
        raw_csv,
        LABELS,
        SplitSettings(train=24, val=24, test=24),
        {"train": train_ref, "val": val_ref},
    )
    reference = set(whole["train"]["text"]) | set(whole["val"]["text"])
    for frame in splits.values():
        assert not set(frame["text"]) & reference
    with pytest.raises(DataError, match="reference split's train and val"):
        make_splits(raw_csv, LABELS, SplitSettings(train=24, val=24, test=24))


def test_raw_tweets_keep_their_html_entities(raw_csv):
    train = make_splits(
        raw_csv,
        LABELS,
        SplitSettings(train=24, val=12, test=12, unescape_html=False, exclude_reference=False),
    )["train"]
    assert train["text"].str.contains("&amp;").all()


def test_write_splits_writes_all_three(raw_csv, tmp_path):
    splits = make_splits(raw_csv, LABELS, SMALL)
    paths = {name: tmp_path / "out" / f"{name}.csv" for name in splits}
    write_splits(splits, paths)
    for name, path in paths.items():
        assert pd.read_csv(path).columns.tolist() == ["id", "text", "label"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "test.csv",
        "train.csv",
        "val.csv",
    ]


# The real files: where .ci/run and an offline user place them (data/), else the shared copy.
def _first(*candidates):
    return next((p for p in candidates if p.exists()), candidates[0])


SHARED = REPO.parents[1] / "shared" / "data"
RAW = _first(REPO / "data" / "labeled_data.csv", SHARED / "labeled_data.csv")
REFERENCE = {
    part: _first(
        REPO / "data" / f"reference_{part}.csv", SHARED / "reference_split" / f"{part}.csv"
    )
    for part in ("train", "val")
}


def need_real_files(*paths):
    """Skip where the real files are absent, except under CI, which places them: there it fails."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI places these files (see .ci/run) but they are missing: {missing}")
        pytest.skip(f"the real dataset files are not placed: {missing}")


def test_default_sizes_on_the_real_dataset():
    need_real_files(RAW)
    splits = make_splits(RAW, LABELS, SplitSettings(exclude_reference=False))
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

    from adaptune.data.splits import download_dataset

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


def test_default_splits_share_no_tweet_with_the_reference_split_or_each_other():
    """The default splits (config.yaml) on the real files: no tweet of the reference study's
    train or val is in any sampled split, and no two sampled tweets (test included) share a
    near-duplicate key (text_key), within a split or across splits."""
    import yaml

    need_real_files(RAW, *REFERENCE.values())
    from adaptune.core.config import with_defaults

    section = with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))["splits"]
    splits = make_splits(RAW, LABELS, SplitSettings.from_config(section), REFERENCE)
    reference = set()
    for path in REFERENCE.values():
        reference |= set(pd.read_csv(path, keep_default_na=False)["text"].map(text_key))
    assert len(reference) > 1000
    assert {n: len(f) for n, f in splits.items()} == {"train": 1000, "val": 200, "test": 600}
    keys = pd.concat([frame["text"].map(text_key) for frame in splits.values()])
    assert keys.is_unique
    assert not set(keys) & reference


def test_the_real_dataset_has_near_duplicates_that_the_key_finds():
    """Retweets and copies that differ in a handle or link: exact text finds none of them."""
    import html

    need_real_files(RAW)
    tweets = read_raw_dataset(RAW)["tweet"].astype(str)
    assert not tweets.map(html.unescape).duplicated().any()
    assert (
        near_duplicates(tweets) == 478
    )  # rows whose key another row shares (315 beyond the first of each)
    assert tweets.map(text_key).duplicated().sum() == 315


def test_text_key_ignores_case_handles_links_and_a_leading_rt():
    assert text_key("RT @someone: I LOVE   this http://t.co/x1") == "i love this"
    assert text_key("i love this @other https://www.example.com/a?b") == "i love this"
    assert text_key("rt rt @a: @b word &amp; more\n") == "word & more"
    assert text_key("art is not rt") == "art is not rt"  # only a leading RT goes
    assert text_key("I love this") != text_key("I loved this")


def test_near_duplicates_never_span_splits_and_fixed_demonstrations_stay_out(tmp_path):
    twins = (
        '900,3,0,0,3,2,"RT @a: lovely weather today &amp; more #0"\n'
        '901,3,0,0,3,2,"lovely weather   TODAY & more #0 http://t.co/zz"\n'
    )
    raw = write_raw_csv(tmp_path / "raw.csv", per_class=9, extra_rows=twins)
    demo = "@x Those people are VERMIN & more #3"  # a near-duplicate of one hate tweet
    settings = SplitSettings(train=12, val=6, test=6, exclude_reference=False)
    splits = make_splits(raw, LABELS, settings, exclude_texts=[demo])
    keys = pd.concat(splits.values())["text"].map(text_key)
    assert keys.is_unique
    assert text_key(demo) not in set(keys)
    # With 9 hate tweets and one of them a demonstration, splits needing all 9 are refused.
    with pytest.raises(DataError, match="class 'hate' has 8 distinct tweets"):
        make_splits(
            raw,
            LABELS,
            SplitSettings(train=18, val=6, test=3, exclude_reference=False),
            exclude_texts=[demo],
        )


def test_another_train_draw_keeps_val_and_test_out_and_differs(raw_csv, tmp_path):
    from adaptune.data.splits import draw_train_split

    settings = SplitSettings(train=24, val=12, test=12, seed=3, exclude_reference=False)
    splits = make_splits(raw_csv, LABELS, settings)
    paths = {name: tmp_path / f"{name}.csv" for name in splits}
    write_splits(splits, paths)
    drawn = draw_train_split(raw_csv, LABELS, settings, [paths["val"], paths["test"]], split_seed=7)
    again = draw_train_split(raw_csv, LABELS, settings, [paths["val"], paths["test"]], split_seed=7)
    pd.testing.assert_frame_equal(drawn, again)
    assert len(drawn) == 24 and drawn["label"].value_counts().to_dict() == {
        label: 8 for label in LABELS
    }
    held = set(pd.concat([splits["val"], splits["test"]])["text"].map(text_key))
    assert not set(drawn["text"].map(text_key)) & held
    assert set(drawn["id"]) != set(splits["train"]["id"])
    with pytest.raises(DataError, match="reference study's train split is fixed"):
        draw_train_split(
            raw_csv, LABELS, SplitSettings(reference={"enabled": True}), [], split_seed=7
        )


def test_the_reports_reference_val_counts_are_those_of_the_reference_file():
    from adaptune.report.reference_study import REFERENCE_MAJORITY, REFERENCE_VAL_COUNTS

    need_real_files(REFERENCE["val"])
    labels = pd.read_csv(REFERENCE["val"], keep_default_na=False)["label"]
    assert labels.value_counts().to_dict() == REFERENCE_VAL_COUNTS
    majority = labels.value_counts()
    assert (majority.index[0], majority.iloc[0] / len(labels)) == REFERENCE_MAJORITY
