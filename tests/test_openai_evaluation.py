"""Evaluation of OpenAI systems against a real HTTP server on 127.0.0.1 (tests/fake_openai.py),
through the real openai client: the contract's files, answers read as a person reads them, retried
429/500 answers, models the endpoint no longer serves or refuses (outputs in the not-run form),
the answering snapshot recorded, and the response cache."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from openai_helpers import LABELS, fake_server, prompt_records, settings_for, write_prompts

from adaptune.openai.answers import match_label, parse_answer, word_label
from adaptune.openai.evaluation import MetricSettings, System, demonstrations, evaluate
from adaptune.openai.formats import chat_messages


@pytest.fixture
def prompts(tmp_path):
    return write_prompts(tmp_path)


@pytest.fixture
def server(monkeypatch):
    yield from fake_server(monkeypatch)


# --- evaluation -------------------------------------------------------------------------------


def run_evaluate(server, prompts, tmp_path, system, splits=("test",), **overrides):
    return evaluate(
        system,
        {s: prompts[s] for s in splits},
        prompts["train"],
        tmp_path / "eval" / system.name,
        LABELS,
        settings_for(server, **overrides),
        MetricSettings(bootstrap_samples=50, seed=1),
        tmp_path / "cache",
    )


CHAT = System(
    name="gpt-4o-mini-k3", model="gpt-4o-mini", method="openai_chat", k=3, base_model="gpt-4o-mini"
)


def test_chat_evaluation_writes_the_contract_format_and_counts_non_labels(
    server, prompts, tmp_path
):
    # Right on hate and neutral; on offensive tweets it refuses, which is no label.
    def answer(model, prompt):
        tweet = prompt.rsplit("Tweet:", 1)[-1]
        return (
            "Sorry, I cannot help"
            if "offensive" in tweet
            else ("hate" if "hate" in tweet else "neutral")
        )

    server.answer = answer
    server.snapshots["gpt-4o-mini"] = "gpt-4o-mini-2024-07-18"  # the alias answers as a snapshot
    metrics = run_evaluate(server, prompts, tmp_path, CHAT, splits=("test", "val"))

    test = json.loads((tmp_path / "eval" / CHAT.name / "metrics.json").read_text())
    assert test == json.loads(json.dumps(metrics["test"]))
    assert test["n"] == 9 and test["invalid"] == 3 and test["accuracy"] == pytest.approx(6 / 9)
    assert test["status"] == "ran" and test["answering_models"] == ["gpt-4o-mini-2024-07-18"]
    assert test["provenance"]["config"]["endpoint"] == server.base_url
    assert test["system"]["method"] == "openai_chat" and test["system"]["k"] == 3
    assert (
        test["system"]["name"] == "openai/gpt-4o-mini-k3"
        and test["system"]["openai_model"] == "gpt-4o-mini"
    )
    assert test["confusion_matrix"][1] == [0, 0, 0]  # invalid answers fall in no column
    assert len(test["provenance"]["config"]["demonstrations"]) == 3
    val = json.loads((tmp_path / "eval" / CHAT.name / "val" / "metrics.json").read_text())
    assert val["split"] == "val" and val["n"] == 6

    predictions = pd.read_csv(
        tmp_path / "eval" / CHAT.name / "predictions.csv", keep_default_na=False
    )
    assert list(predictions.columns) == [
        "id",
        "text",
        "gold",
        "predicted",
        "prob_hate",
        "prob_offensive",
        "prob_neutral",
    ]
    refused = predictions[predictions["gold"] == "offensive"]
    assert (refused["predicted"] == "").all()
    right = predictions[predictions["gold"] == "hate"].iloc[0]
    assert right["predicted"] == "hate" and float(right["prob_hate"]) == pytest.approx(
        math.exp(-0.05)
    )

    # The requests: temperature 0, top log-probabilities, 3 demonstrations as chat turns.
    chat = [r.body for r in server.requests if r.path == "/v1/chat/completions"]
    assert len(chat) == 15
    assert all(b["temperature"] == 0 and b["logprobs"] and b["top_logprobs"] == 5 for b in chat)
    assert [m["role"] for m in chat[0]["messages"]] == ["system"] + ["user", "assistant"] * 3 + [
        "user"
    ]


def test_429_and_500_answers_are_retried(server, prompts, tmp_path):
    server.fail_next(2, 429, "/v1/chat/completions")
    server.fail_next(1, 500, "/v1/chat/completions")
    metrics = run_evaluate(server, prompts, tmp_path, CHAT, max_concurrency=1, max_retries=3)
    assert metrics["test"]["n"] == 9 and metrics["test"]["accuracy"] == 1.0
    assert server.count("POST", "/v1/chat/completions") == 9


def test_a_request_that_keeps_failing_names_its_example(server, prompts, tmp_path):
    server.fail_next(100, 500, "/v1/chat/completions")
    with pytest.raises(RuntimeError, match="gpt-4o-mini-k3: test example id .* request failed"):
        run_evaluate(server, prompts, tmp_path, CHAT, max_retries=1, max_concurrency=1)
    assert not (tmp_path / "eval" / CHAT.name / "metrics.json").exists()


def test_a_rerun_is_answered_from_the_cache(server, prompts, tmp_path):
    first = run_evaluate(server, prompts, tmp_path, CHAT)
    before = server.count("POST", "/v1/chat/completions")
    second = run_evaluate(server, prompts, tmp_path, CHAT)
    # Only the free question whether the model is still served went out.
    assert server.count("POST", "/v1/chat/completions") == before
    assert server.count("GET", "/v1/models/gpt-4o-mini") == 2
    assert second["test"]["accuracy"] == first["test"]["accuracy"]
    # Another k is another request: it is not answered from the cache.
    run_evaluate(
        server, prompts, tmp_path, System("gpt-4o-mini-k0", "gpt-4o-mini", "openai_chat", 0)
    )
    assert server.count("POST", "/v1/chat/completions") == 18


def test_a_fine_tuned_completion_model_is_asked_on_the_completions_endpoint(
    server, prompts, tmp_path
):
    server.logprobs = False  # an endpoint without log-probabilities: the first word decides

    def answer(model, text):  # as a person would read them: right, right, and no label
        tweet = text.rsplit("Tweet:", 1)[-1]
        return "Neutral." if "lovely" in tweet else ("HATE!" if "hate" in tweet else "o")

    server.answer = answer
    system = System(
        "ft-babbage-002", "ft:babbage-002:org::abc", "openai_finetune", base_model="babbage-002"
    )
    metrics = run_evaluate(server, prompts, tmp_path, system)["test"]
    bodies = [r.body for r in server.requests if r.path == "/v1/completions"]
    assert len(bodies) == 9 and all(
        b["prompt"].endswith("Category:") and b["logprobs"] == 5 for b in bodies
    )
    assert bodies[0]["prompt"].startswith("Classify")  # no demonstrations
    assert metrics["invalid"] == 3 and metrics["accuracy"] == pytest.approx(6 / 9)
    assert metrics["system"]["k"] is None and metrics["system"]["method"] == "openai_finetune"
    assert metrics["system"]["openai_model"] == "babbage-002"
    predictions = pd.read_csv(tmp_path / "eval" / system.name / "predictions.csv")
    assert predictions["prob_hate"].isna().all()


def read_not_run(directory) -> tuple[dict, pd.DataFrame]:
    metrics = json.loads((directory / "metrics.json").read_text())
    predictions = pd.read_csv(directory / "predictions.csv")
    assert metrics["status"] == "not_run" and metrics["labels"] == LABELS
    assert not {"n", "accuracy", "macro_f1", "confusion_matrix"} & set(metrics)
    assert predictions.empty and list(predictions.columns) == [
        "id",
        "text",
        "gold",
        "predicted",
        "prob_hate",
        "prob_offensive",
        "prob_neutral",
    ]
    return metrics, predictions


@pytest.mark.parametrize(
    "how, reason",
    [
        (
            "missing",
            "model gpt-4o-mini is not available on this endpoint (HTTP 404 model_not_found: "
            "The model 'gpt-4o-mini' does not exist)",
        ),
        ("shut down", "model gpt-4o-mini was shut down on 2026-10-23"),
    ],
)
def test_a_model_the_endpoint_no_longer_serves_is_not_run_without_a_request(
    server, prompts, tmp_path, how, reason
):
    if how == "missing":
        server.missing.add("gpt-4o-mini")
    else:
        server.shutdown_dates["gpt-4o-mini"] = "2026-10-23"
    results = run_evaluate(server, prompts, tmp_path, CHAT, splits=("test", "val"))
    assert results["test"]["reason"] == reason
    test, _ = read_not_run(tmp_path / "eval" / CHAT.name)
    val, _ = read_not_run(tmp_path / "eval" / CHAT.name / "val")
    assert (
        test["split"] == "test"
        and val["split"] == "val"
        and test["reason"] == val["reason"] == reason
    )
    # An OpenAI system has no training seed (its seeds are in the provenance).
    assert test["system"]["name"] == "openai/gpt-4o-mini-k3" and test["system"]["seed"] is None
    assert server.count("POST", "/v1/chat/completions") == 0


def test_a_refused_request_makes_the_system_not_run_and_names_the_example(
    server, prompts, tmp_path
):
    server.refuse_requests["gpt-4o-mini"] = (
        403,
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    )
    run_evaluate(server, prompts, tmp_path, CHAT, splits=("test", "val"), max_concurrency=1)
    test, _ = read_not_run(tmp_path / "eval" / CHAT.name)
    assert test["reason"].startswith("test example id ")
    assert test["reason"].endswith(
        "refused: HTTP 403 unsupported_country_region_territory: "
        "Country, region, or territory not supported"
    )
    read_not_run(tmp_path / "eval" / CHAT.name / "val")


def test_a_system_whose_fine_tuning_did_not_run_writes_the_not_run_outputs_offline(
    prompts, tmp_path, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # no request, so no key needed
    system = System(
        "ft-gpt-4o-mini-2024-07-18",
        "gpt-4o-mini-2024-07-18",
        "openai_finetune",
        base_model="gpt-4o-mini-2024-07-18",
    )
    evaluate(
        system,
        {"test": prompts["test"]},
        prompts["train"],
        tmp_path / "eval" / system.name,
        LABELS,
        settings_for_offline(),
        MetricSettings(bootstrap_samples=50, seed=1),
        tmp_path / "cache",
        not_run_reason="fine-tuning job refused: HTTP 403 permission_denied: no",
    )
    metrics, _ = read_not_run(tmp_path / "eval" / system.name)
    assert metrics["reason"] == "fine-tuning job refused: HTTP 403 permission_denied: no"
    assert metrics["system"]["method"] == "openai_finetune" and metrics["system"]["k"] is None


def settings_for_offline():
    from adaptune.openai.settings import OpenAISettings

    return OpenAISettings(base_url="http://127.0.0.1:9/v1")


# --- reading answers --------------------------------------------------------------------------


def test_labels_are_read_from_the_top_tokens_then_the_first_word():
    chat = {
        "choices": [
            {
                "message": {"content": "I think offensive"},
                "logprobs": {
                    "content": [
                        {
                            "token": "I",
                            "logprob": -0.1,
                            "top_logprobs": [
                                {"token": "I", "logprob": -0.1},
                                {"token": " off", "logprob": -2.5},
                                {"token": "hate", "logprob": -3.0},
                            ],
                        }
                    ]
                },
            }
        ]
    }
    # The top token is no label: an invalid answer, though labels are among the other tokens.
    label, scores, text = parse_answer(chat, "chat", LABELS)
    assert label is None and scores["offensive"] == pytest.approx(math.exp(-2.5))
    assert scores["hate"] == pytest.approx(math.exp(-3.0)) and scores["neutral"] == 0.0
    assert text == "I think offensive"
    split = {
        "choices": [
            {
                "message": {"content": "offensive"},
                "logprobs": {
                    "content": [
                        {
                            "token": "Off",
                            "logprob": -0.2,
                            "top_logprobs": [
                                {"token": "Off", "logprob": -0.2},
                                {"token": "neutral", "logprob": -1.9},
                            ],
                        }
                    ]
                },
            }
        ]
    }
    assert parse_answer(split, "chat", LABELS)[0] == "offensive"  # a label split into tokens
    space = {
        "choices": [
            {"text": " Neutral", "logprobs": {"top_logprobs": [{" ": -0.1, " hate": -3.0}]}}
        ]
    }
    assert (
        parse_answer(space, "completion", LABELS)[0] == "neutral"
    )  # a lone space: the word decides
    short = {
        "choices": [
            {"text": " Neutral", "logprobs": {"top_logprobs": [{" Ne": -0.1, " hate": -3.0}]}}
        ]
    }
    assert (
        parse_answer(short, "completion", LABELS)[0] == "neutral"
    )  # "Ne" is too short: the word decides

    completion = {
        "choices": [
            {"text": " The tweet", "logprobs": {"top_logprobs": [{" The": -0.1, " This": -1.0}]}}
        ]
    }
    assert parse_answer(completion, "completion", LABELS)[0] is None
    no_logprobs = {"choices": [{"text": " neutral\n", "logprobs": None}]}
    assert parse_answer(no_logprobs, "completion", LABELS)[:2] == ("neutral", None)


@pytest.mark.parametrize(
    "answer, label",
    [
        ("hate", "hate"),
        (" Hate", "hate"),
        ("HATE!", "hate"),
        ("Neutral.", "neutral"),
        ("'offensive'", "offensive"),
        ("**Offensive**", "offensive"),
        ("off", "offensive"),
        ("neu", "neutral"),
        ("hat", "hate"),
        ("ne", None),
        ("o", None),
        ("n", None),
        ("", None),
        (" ", None),
        ("...", None),
        ("hateful", None),
        ("neither", None),
        ("Sorry", None),
    ],
)
def test_a_label_is_read_as_a_person_would(answer, label):
    assert match_label(answer, LABELS) == label


def test_a_prefix_that_fits_two_labels_names_none():
    assert match_label("hat", ["hate", "hatred", "neutral"]) is None
    assert match_label("hate", ["hate", "hatred", "neutral"]) == "hate"
    assert word_label("offensive, clearly", LABELS) == "offensive"
    assert word_label("", LABELS) is None and word_label("hateful speech", LABELS) is None


def test_demonstrations_are_balanced_and_seeded():
    train = prompt_records(5, "t")
    three = demonstrations(train, 3, LABELS, seed=7)
    assert sorted(d["label"] for d in three) == sorted(LABELS)
    assert three == demonstrations(train, 3, LABELS, seed=7)
    assert demonstrations(train, 0, LABELS, seed=7) == []
    with pytest.raises(ValueError, match="only 15 examples"):
        demonstrations(train, 16, LABELS, seed=7)
    messages = chat_messages("q", LABELS, three)
    assert messages[-1] == {"role": "user", "content": "q"} and len(messages) == 8
