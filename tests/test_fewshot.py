import json
import random
from collections import Counter

import pytest

from adaptune.evaluate.run import EvaluationSettings, evaluate_fewshot
from adaptune.core.names import split_dir
from adaptune.data.prompts import build_fewshot_prompts, draw_demonstrations
from adaptune.core.io import write_jsonl
from adaptune.data.prompts import completion, render

LABELS = ["hate", "offensive", "neutral"]
TEMPLATE = "Classify the tweet as one of: {labels}.\n\nTweet: {text}\nCategory:"


def records(split, n_per_label):
    out = []
    for label in LABELS:
        for i in range(n_per_label):
            text = f"{split} tweet {i} about {label}"
            out.append(
                {
                    "id": f"{split}-{label}-{i}",
                    "text": text,
                    "prompt": render(TEMPLATE, text, LABELS),
                    "completion": completion(label),
                    "label": label,
                }
            )
    return out


TRAIN, TEST = records("train", 10), records("test", 5)


@pytest.mark.parametrize("k", [0, 1, 3, 5, 6])
def test_demonstrations_come_from_train_only_and_are_balanced(k):
    prompts, demo_ids = build_fewshot_prompts(TEST, TRAIN, LABELS, k, seed=42)
    train_ids = {r["id"] for r in TRAIN}
    test_ids = {r["id"] for r in TEST}
    by_id = {r["id"]: r for r in TRAIN}
    for query, prompt, ids in zip(TEST, prompts, demo_ids):
        assert len(ids) == k and len(set(ids)) == k
        assert set(ids) <= train_ids and not set(ids) & test_ids
        counts = Counter(by_id[i]["label"] for i in ids)
        assert (
            max(counts.values(), default=0) - min((counts[label] for label in LABELS), default=0)
            <= 1
        )
        assert prompt.endswith(query["prompt"])
        for other in TEST:  # no evaluated tweet appears in a demonstration
            assert other["text"] not in prompt[: -len(query["prompt"])]
        for i in ids:
            assert by_id[i]["prompt"] + by_id[i]["completion"] + "\n\n" in prompt


def test_zero_shot_prompt_is_the_query_prompt():
    prompts, demo_ids = build_fewshot_prompts(TEST, TRAIN, LABELS, 0, seed=1)
    assert prompts == [r["prompt"] for r in TEST] and demo_ids == [[]] * len(TEST)


def test_draws_are_seeded_and_vary_across_queries():
    a = build_fewshot_prompts(TEST, TRAIN, LABELS, 3, seed=42)
    b = build_fewshot_prompts(list(reversed(TEST)), TRAIN, LABELS, 3, seed=42)
    c = build_fewshot_prompts(TEST, TRAIN, LABELS, 3, seed=43)
    assert a[1] == list(reversed(b[1]))  # a query's draw does not depend on the split's order
    assert a[1] != c[1]
    assert len({tuple(sorted(ids)) for ids in a[1]}) > 1


def test_pool_overlapping_the_evaluated_split_is_refused():
    with pytest.raises(ValueError, match="shares 2 id"):
        build_fewshot_prompts(TEST, TRAIN + TEST[:2], LABELS, 3, seed=0)


def test_duplicate_text_of_the_query_is_never_a_demonstration():
    twin = dict(TRAIN[0], id="train-twin", text=TEST[0]["text"], label="hate")
    pool = [twin] + [r for r in TRAIN if r["label"] != "hate"] + [TRAIN[1]]
    for seed in range(20):
        _, ids = build_fewshot_prompts(TEST[:1], pool, LABELS, 3, seed=seed)
        assert "train-twin" not in ids[0]


def test_too_small_pool_is_a_clear_error():
    with pytest.raises(ValueError, match="has 1 example"):
        draw_demonstrations(TRAIN[:1] + TRAIN[10:], LABELS, 6, random.Random(0))


def test_evaluate_fewshot_writes_every_split(tmp_path, tiny_llama):
    from adaptune.lm.prepare import prepare_model

    model_dir = prepare_model(
        {
            "name": "tiny-llama",
            "source": "local",
            "path": str(tiny_llama),
            "attention_modules": ["q_proj"],
            "mlp_modules": ["up_proj"],
        },
        tmp_path / "model",
    )
    write_jsonl(tmp_path / "train.jsonl", TRAIN)
    write_jsonl(tmp_path / "test.jsonl", TEST)
    write_jsonl(tmp_path / "val.jsonl", records("val", 2))
    outputs = {
        split: split_dir(tmp_path / "eval" / "tiny-llama" / "fewshot-k3", split)
        for split in ("test", "val")
    }
    results = evaluate_fewshot(
        model_dir,
        "none",
        tmp_path / "train.jsonl",
        {"test": tmp_path / "test.jsonl", "val": tmp_path / "val.jsonl"},
        outputs,
        k=3,
        labels=LABELS,
        style="instruction",
        settings=EvaluationSettings(batch_size=4, bootstrap_samples=100),
        name="tiny-llama/fewshot-k3",
        config_section={"k": 3},
    )
    assert results["val"]["n"] == 6
    metrics = json.loads((outputs["test"] / "metrics.json").read_text())
    assert metrics["system"] == {
        "model": "tiny-llama",
        "method": "fewshot",
        "name": "tiny-llama/fewshot-k3",
        "style": "instruction",
        "k": 3,
        "quantization": "none",
        "seed": None,
    }
    assert metrics["n"] == 15 and metrics["split"] == "test"
    assert (outputs["val"] / "predictions.csv").is_file()
    with pytest.raises(ValueError, match="train split"):
        evaluate_fewshot(
            model_dir,
            "none",
            tmp_path / "train.jsonl",
            {"train": tmp_path / "train.jsonl"},
            {"train": tmp_path / "x"},
            3,
            LABELS,
            "instruction",
            EvaluationSettings(),
            "x",
            {},
        )


def test_fixed_demonstrations_are_the_same_for_every_query_in_their_order():
    from adaptune.data.prompts import build_fewshot_prompts

    fixed = [
        {"id": f"fixed-{i}", "prompt": f"Message: demo {i}\nCategory:", "completion": f" {label}"}
        for i, label in enumerate(["neutral", "hate", "offensive"])
    ]
    queries = [
        {"id": f"q{i}", "text": f"query {i}", "prompt": f"Message: query {i}\nCategory:"}
        for i in range(4)
    ]
    prompts, ids = build_fewshot_prompts(
        queries, [], ["hate", "offensive", "neutral"], 3, seed=1, fixed=fixed
    )
    demos = "".join(d["prompt"] + d["completion"] + "\n\n" for d in fixed)
    assert prompts == [demos + q["prompt"] for q in queries]
    assert ids == [["fixed-0", "fixed-1", "fixed-2"]] * 4
    zero, _ = build_fewshot_prompts(
        queries, [], ["hate", "offensive", "neutral"], 0, seed=1, fixed=fixed
    )
    assert zero == [q["prompt"] for q in queries]
    with pytest.raises(ValueError, match="k=2 but 3 fixed"):
        build_fewshot_prompts(queries, [], ["hate", "offensive", "neutral"], 2, seed=1, fixed=fixed)
