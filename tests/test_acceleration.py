"""adaptune.acceleration on real tiny models: what bf16 preparation casts and keeps, and that a
prepared model still trains and scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptune.acceleration import lightning_precision, prepare_for_inference, prepare_for_training
from adaptune.models import load_model
from adaptune.scoring import score_labels

LABELS = ["hate", "offensive", "neutral"]
PROMPTS = ["Tweet: I love sunny days at the beach\nCategory:", "Tweet: you are a stupid idiot\nCategory:",
           "Tweet: those people should go away\nCategory:"]


def lora(model):
    from peft import LoraConfig, get_peft_model

    for param in model.parameters():
        param.requires_grad = False
    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            task_type="CAUSAL_LM"))


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_gptj"])
def test_bf16_training_casts_the_frozen_base_and_keeps_lora_in_fp32(arch, request, one_thread):
    model, tokenizer = load_model(request.getfixturevalue(arch), "none")
    model = prepare_for_training(lora(model), "bf16")
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    trainable = {p.dtype for p in model.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trainable == {torch.float32}
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    optimizer.step()
    after = [p for p in model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert lightning_precision("bf16") == "32-true" and lightning_precision("32-true") == "32-true"


def test_fp32_changes_nothing(tiny_llama, one_thread):
    model, _ = load_model(tiny_llama, "none")
    model = prepare_for_training(lora(model), "fp32")
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_bf16_inference_scores_close_to_fp32(tiny_llama, one_thread):
    model, tokenizer = load_model(tiny_llama, "none")
    reference = score_labels(model, tokenizer, PROMPTS, LABELS)
    model = prepare_for_inference(model, "bf16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16} and not model.training
    scores = score_labels(model, tokenizer, PROMPTS, LABELS)
    assert np.allclose(scores, reference, atol=0.1)


def test_bf16_training_leaves_int8_weights_alone(tiny_llama, one_thread):
    model, _ = load_model(tiny_llama, "8bit")
    model = prepare_for_training(lora(model), "bf16")
    dtypes = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert torch.int8 in dtypes and torch.float32 not in dtypes
