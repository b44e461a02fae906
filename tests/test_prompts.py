import json

import pytest

from adaptune.data.prompts import TemplateError, check_template, format_prompts, render

LABELS = ["hate", "offensive", "neutral"]
INSTRUCTION = "Classify the tweet as one of: {labels}.\n\nTweet: {text}\nCategory:"


def test_render_lists_labels_in_order_and_keeps_braces_in_text():
    prompt = render(INSTRUCTION, "a {weird} tweet", LABELS)
    assert prompt == (
        "Classify the tweet as one of: hate, offensive, neutral.\n\n"
        "Tweet: a {weird} tweet\nCategory:"
    )


def test_format_prompts_writes_records_with_spaced_completions(tmp_path):
    split = tmp_path / "train.csv"
    split.write_text('id,text,label\n7,"hello, world",neutral\n8,you idiot,offensive\n')
    out = tmp_path / "prompts" / "train.jsonl"
    assert format_prompts(split, "{text}\n###", LABELS, out) == 2
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0] == {
        "id": "7",
        "text": "hello, world",
        "prompt": "hello, world\n###",
        "completion": " neutral",
        "label": "neutral",
    }
    assert all(r["completion"] == " " + r["label"] for r in records)


@pytest.mark.parametrize(
    "template, message",
    [
        ("no text here", r"must contain \{text\}"),
        ("{text} {label}", r"unknown field\(s\) \{label\}"),
        ("{text} {", "prompts.templates.style"),
    ],
)
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
    from adaptune.data.prompts import read_prompts

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


# ------------------------------------------------------------- the reference study's prompts
# Copied verbatim from github.com/vetka925/gpt-j-8bit-lightning-finetune at commit
# a92fcb6a4d075afffc234b8e4618a8083cf3775c: finetune.ipynb (create_instruction_prompt, and how
# its label list is built) and fewshot.ipynb (create_prompt).


def notebook_create_instruction_prompt(text, all_labels):
    prompt = f""" Classify the following messages into one of the following categories: \
{",".join(all_labels)}

Message: {text}

Category:"""
    return prompt


def notebook_create_prompt(text):
    prompt = f"""Classify the following messages into one of the following categories: \
neutral, hate, offensive

Message: I could go for a brownie right now
Category: neutral
/n/n###/n/n
Message: What these bitches want from a nigga?, like on some DMX shit
Category: hate
/n/n###/n/n
Message: So says the one who fills an empty hole inside herself by worshiping a royal. \
Who 4 all u kno may be a raging snotty bitch
Category: offensive
/n/n###/n/n
Message: {text}
Category:"""
    return prompt


def reference_config():
    import yaml

    from conftest import REPO

    return yaml.safe_load((REPO / "configs" / "reference.yaml").read_text())


TWEETS = ["RT @someone: I could go &amp; see", "  two  spaces\nand a line  ", "ends with a colon:"]


@pytest.mark.parametrize("text", TWEETS)
def test_reference_template_renders_the_notebooks_prompt_byte_for_byte(text):
    template = reference_config()["prompts"]["templates"]["reference"]
    check_template(template, "reference")
    # Its labels: the set of completions " hate", " neutral", " offensive", in the order its
    # notebook shows; joined by "," they put two spaces after "categories:".
    expected = notebook_create_instruction_prompt(text, [" hate", " neutral", " offensive"])
    assert "categories:  hate, neutral, offensive\n" in expected
    assert render(template, text, LABELS) == expected


@pytest.mark.parametrize("text", TWEETS)
def test_reference_fewshot_prompt_is_the_notebooks_byte_for_byte(text):
    from adaptune.data.prompts import build_fewshot_prompts
    from adaptune.data.prompts import completion

    config = reference_config()
    fewshot = config["evaluation"]["fewshot"]
    template = config["prompts"]["templates"][fewshot["style"]]
    # As workflow/scripts/fewshot.py builds the fixed demonstrations.
    fixed = [
        {
            "id": f"fixed-{i}",
            "prompt": render(template, d["text"], LABELS),
            "completion": completion(d["label"]),
        }
        for i, d in enumerate(fewshot["fixed_demonstrations"])
    ]
    query = {"id": "q", "text": text, "prompt": render(template, text, LABELS)}
    prompts, _ = build_fewshot_prompts(
        [query],
        [],
        LABELS,
        3,
        seed=0,
        fixed=fixed,
        instruction=fewshot["instruction"],
        separator=fewshot["separator"],
    )
    assert prompts == [notebook_create_prompt(text)]
    assert prompts[0].count("Classify") == 1 and prompts[0].count("\n/n/n###/n/n\n") == 3


def test_the_reference_protocol_prompts_the_same_8bit_base_it_fine_tunes_in_fp32():
    """fewshot.ipynb scored the 8-bit GPT-J that finetune.ipynb trained, neither in half
    precision."""
    config = reference_config()
    assert config["training"]["quantizations"] == ["8bit"]
    assert config["evaluation"]["fewshot"]["quantization"] == "8bit"
    assert config["training"]["precision"] == "32-true"
