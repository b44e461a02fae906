import json

import pytest

from adaptune.prompts import TemplateError, check_template, format_prompts, render

LABELS = ["hate", "offensive", "neutral"]
INSTRUCTION = "Classify the tweet as one of: {labels}.\n\nTweet: {text}\nCategory:"


def test_render_lists_labels_in_order_and_keeps_braces_in_text():
    prompt = render(INSTRUCTION, "a {weird} tweet", LABELS)
    assert prompt == "Classify the tweet as one of: hate, offensive, neutral.\n\nTweet: a {weird} tweet\nCategory:"


def test_format_prompts_writes_records_with_spaced_completions(tmp_path):
    split = tmp_path / "train.csv"
    split.write_text('id,text,label\n7,"hello, world",neutral\n8,you idiot,offensive\n')
    out = tmp_path / "prompts" / "train.jsonl"
    assert format_prompts(split, "{text}\n###", LABELS, out) == 2
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0] == {"id": "7", "text": "hello, world", "prompt": "hello, world\n###",
                          "completion": " neutral", "label": "neutral"}
    assert all(r["completion"] == " " + r["label"] for r in records)


@pytest.mark.parametrize("template, message", [
    ("no text here", r"must contain \{text\}"),
    ("{text} {label}", r"unknown field\(s\) \{label\}"),
    ("{text} {", "prompts.templates.style"),
])
def test_bad_templates_are_refused(template, message):
    with pytest.raises(TemplateError, match=message):
        check_template(template, "style")


def test_unknown_label_names_the_row_and_writes_nothing(tmp_path):
    split = tmp_path / "val.csv"
    split.write_text("id,text,label\n1,a,hate\n2,b,spam\n")
    out = tmp_path / "val.jsonl"
    with pytest.raises(ValueError, match=r"val.csv: row 3: label 'spam'"):
        format_prompts(split, INSTRUCTION, LABELS, out)
    assert not out.exists()


def test_read_prompts_checks_every_record(tmp_path):
    from adaptune.prompts import read_prompts

    good = {"id": "1", "text": "t", "prompt": "p", "completion": " hate", "label": "hate"}
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "label": "spam"}) + "\n")
    with pytest.raises(ValueError, match=r"train.jsonl: line 2: label 'spam'"):
        read_prompts(path, LABELS)
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "prompt"}) + "\n")
    with pytest.raises(ValueError, match=r"line 1: missing or non-string key\(s\) \['prompt'\]"):
        read_prompts(path, LABELS)
    path.write_text(json.dumps(good) + "\n")
    assert read_prompts(path, LABELS) == [good]
