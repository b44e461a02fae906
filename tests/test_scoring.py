import numpy as np
import pytest
import torch

from adaptune.lm.scoring import (
    ScoringSettings,
    completion_ids,
    encode_prompts,
    label_probabilities,
    predicted_labels,
    score_labels,
)
from tiny_model import build_tiny_model

PROMPTS = [
    "Tweet: hi\nCategory:",
    "Classify the tweet as one of: hate, offensive, neutral.\n\nTweet: I love sunny days at the "
    "beach with friends and the weather is nice and the music is great and the game was good\n"
    "Category:",
    "Category:",
    "Tweet: you are a stupid idiot and I hate you\nCategory:",
    "those people " * 40 + "\nCategory:",  # longer than max_length: cut from the left
    "Tweet: 0 1 2 3 4 5 6 7 8 9 ### @ RT\nCategory:",
    "good bad happy sad",
]
SINGLE = ["hate", "offensive", "neutral"]
MULTI = ["hate", "strongly negative", "neutral-ish", "offensive"]
MAX_LENGTH = 64


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["gptj", "llama"])
def tiny(request, tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = build_tiny_model(tmp_path_factory.mktemp(request.param), request.param)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    return model, tokenizer


@pytest.fixture(scope="module")
def naive(tiny):
    """Naive scores of PROMPTS for both label sets, computed once per tiny model."""
    model, tokenizer = tiny
    return {
        tuple(labels): naive_scores(model, tokenizer, PROMPTS, labels, MAX_LENGTH)
        for labels in (SINGLE, MULTI)
    }


def naive_scores(model, tokenizer, prompts, labels, max_length):
    """One prompt and one label at a time, full logits, no padding: the reference computation."""
    scores = np.zeros((len(prompts), len(labels)))
    for p, prompt in enumerate(prompts):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][-max_length:]
        for j, label in enumerate(labels):
            label_ids = tokenizer(" " + label, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt_ids + label_ids])
            with torch.no_grad():
                log_probs = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
            start = len(prompt_ids)
            scores[p, j] = sum(
                log_probs[start - 1 + t, tok].item() for t, tok in enumerate(label_ids)
            )
    return scores


def test_labels_exercise_both_paths(tiny):
    _, tokenizer = tiny
    assert all(len(ids) == 1 for ids in completion_ids(tokenizer, SINGLE))
    assert max(len(ids) for ids in completion_ids(tokenizer, MULTI)) >= 3
    lengths = [len(ids) for ids in encode_prompts(tokenizer, PROMPTS, MAX_LENGTH)]
    assert min(lengths) <= 3 and max(lengths) == MAX_LENGTH


@pytest.mark.parametrize("labels", [SINGLE, MULTI], ids=["single-token", "multi-token"])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_batched_scores_match_naive(tiny, naive, labels, batch_size):
    model, tokenizer = tiny
    expected = naive[tuple(labels)]
    got = score_labels(model, tokenizer, PROMPTS, labels, ScoringSettings(batch_size, MAX_LENGTH))
    assert got.shape == (len(PROMPTS), len(labels))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_fast_path_equals_general_path(tiny):
    model, tokenizer = tiny
    settings = ScoringSettings(batch_size=4, max_length=MAX_LENGTH)
    fast = score_labels(model, tokenizer, PROMPTS, SINGLE, settings)
    general = score_labels(model, tokenizer, PROMPTS, SINGLE + ["strongly negative"], settings)
    np.testing.assert_allclose(fast, general[:, :3], rtol=0, atol=1e-5)


def test_prediction_and_probabilities():
    scores = np.array([[-1.0, -2.0, -3.0], [-5.0, -0.5, -0.7], [-2.0, -2.0, -9.0]])
    assert predicted_labels(scores, SINGLE) == ["hate", "offensive", "hate"]
    probs = label_probabilities(scores)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[0], np.exp(scores[0]) / np.exp(scores[0]).sum())
    assert probs[2, 0] == pytest.approx(probs[2, 1])


def test_empty_and_invalid_settings(tiny):
    model, tokenizer = tiny
    assert score_labels(model, tokenizer, [], SINGLE).shape == (0, 3)
    with pytest.raises(ValueError, match="batch_size"):
        ScoringSettings(batch_size=0)
    with pytest.raises(ValueError, match="tokenize differently"):
        completion_ids(tokenizer, ["hate", "hate"])


def test_vocabulary_argmax_names_the_label_whose_token_tops_the_whole_vocabulary(tiny):
    from adaptune.lm.scoring import score_with_vocab

    model, tokenizer = tiny
    settings = ScoringSettings(batch_size=3, max_length=MAX_LENGTH)
    scores, choice = score_with_vocab(model, tokenizer, PROMPTS, SINGLE, settings)
    label_tokens = [ids[0] for ids in completion_ids(tokenizer, SINGLE)]
    with torch.inference_mode():
        for row, prompt in enumerate(PROMPTS):
            ids = encode_prompts(tokenizer, [prompt], MAX_LENGTH)[0]
            top = int(model(torch.tensor([ids])).logits[0, -1].argmax())
            expected = label_tokens.index(top) if top in label_tokens else -1
            assert choice[row] == expected
    np.testing.assert_allclose(scores, score_labels(model, tokenizer, PROMPTS, SINGLE, settings))
    # Labels of several tokens have no single label position: no vocabulary argmax.
    assert score_with_vocab(model, tokenizer, PROMPTS, MULTI, settings)[1] is None


def test_right_truncation_keeps_the_start_of_a_long_prompt(tiny):
    _, tokenizer = tiny
    long_prompt = PROMPTS[4]
    full = encode_prompts(tokenizer, [long_prompt], 10_000)[0]
    left = encode_prompts(tokenizer, [long_prompt], 16, "left")[0]
    right = encode_prompts(tokenizer, [long_prompt], 16, "right")[0]
    assert len(left) == len(right) == 16
    assert right == full[:16] and left[-8:] == full[-8:] and left != right
    with pytest.raises(ValueError, match="truncation_side"):
        encode_prompts(tokenizer, [long_prompt], 16, "middle")


def test_bf16_scoring_runs_under_autocast_and_stays_close_to_fp32(tiny):
    model, tokenizer = tiny
    fp32 = score_labels(
        model, tokenizer, PROMPTS, SINGLE, ScoringSettings(batch_size=4, max_length=MAX_LENGTH)
    )
    bf16 = score_labels(
        model,
        tokenizer,
        PROMPTS,
        SINGLE,
        ScoringSettings(batch_size=4, max_length=MAX_LENGTH, precision="bf16-mixed"),
    )
    assert not np.array_equal(fp32, bf16)  # the autocast really changed the arithmetic
    np.testing.assert_allclose(bf16, fp32, atol=0.1)
