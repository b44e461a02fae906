"""LoRA + classification head: the last prompt token's hidden state feeds a linear head over the
labels (transformers' *ForSequenceClassification, its `score` layer); the head and LoRA on every
linear layer of the blocks train with cross-entropy on the label (PEFT's SEQ_CLS task, the head
in modules_to_save, so the PEFT folder holds it).

Prompts are the style's, without the completion. Rows are left padded, so a row's last position
is its last real token, which is where the head reads (transformers takes the rightmost token
that is not padding). Its per-label scores are the log-softmax of the head's logits, written to
the same loglik_<label> columns the completion approaches fill: per-label log-scores whose
argmax is the prediction.
"""

from __future__ import annotations

from adaptune.approaches.base import Approach
from adaptune.approaches.lora import all_linear_targets, lora_config

HEAD = "score"  # the head of transformers' GPT-J, Llama, ... sequence classifiers


def peft_config(model, settings, entry: dict):
    return lora_config(
        model,
        settings,
        entry,
        all_linear_targets(model, settings, entry),
        task_type="SEQ_CLS",
        save=[HEAD],
    )


def check(settings) -> None:
    if getattr(settings.lora, "lm_head", None):
        raise ValueError(
            "training settings: lora.lm_head: got True, expected false for head "
            "(a sequence classifier has no LM head)"
        )


def load_classifier(model_dir, quantization: str = "8bit", labels=None, dtype=None, device=None):
    """(model, tokenizer): the base in `model_dir` as a sequence classifier over `labels` (its
    head new, or the trained one of an exported folder), loaded as adaptune.lm.models.load_model
    loads a causal LM; the head stays unquantized."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from adaptune.hardware.precision import cuda_compute_dtype
    from adaptune.lm.models import quantization_config

    dtype = dtype or torch.float32
    device = device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    device = "cuda:0" if device == "cuda" else device
    cuda = device.startswith("cuda")
    compute_dtype = cuda_compute_dtype() if cuda and dtype == torch.float32 else dtype
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = AutoConfig.from_pretrained(model_dir)
    if labels is not None:
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id
    quantized = quantization_config(quantization, compute_dtype)
    if quantized is not None:
        quantized.llm_int8_skip_modules = [HEAD]  # the head trains in full precision
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir,
        config=config,
        dtype=dtype,
        quantization_config=quantized,
        device_map={"": torch.device(device)} if cuda else "cpu",
    )
    model.config.pad_token_id = config.pad_token_id
    return model, tokenizer


def head_logits(model, pad_id: int, prompt_ids: list[list[int]]):
    """The head's logits (rows, labels) of prompts in token ids, left padded."""
    from adaptune.lm.encoding import left_padded

    batch = left_padded(prompt_ids, pad_id)
    device = model.get_input_embeddings().weight.device
    output = model(**{key: value.to(device) for key, value in batch.items()}, use_cache=False)
    return output.logits


def score_prompts(model, tokenizer, prompts, labels, settings, progress=None, completions=None):
    """(scores, None): each prompt's log-softmax of the head's logits over `labels` (float64),
    in the scorer's interface (adaptune.lm.scoring.score_with_vocab)."""
    import numpy as np
    import torch

    from adaptune.hardware.precision import autocast_dtype
    from adaptune.lm.encoding import encode_prompts, pad_token_id

    if len(labels) != model.config.num_labels:
        raise ValueError(
            f"the head has {model.config.num_labels} outputs, but {len(labels)} labels were given"
        )
    scores = np.zeros((len(prompts), len(labels)))
    if not prompts:
        return scores, None
    ids = encode_prompts(tokenizer, prompts, settings.max_length, settings.truncation_side)
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    dtype = autocast_dtype(settings.precision)  # mixed precisions score under autocast
    device_type = model.get_input_embeddings().weight.device.type
    with (
        torch.inference_mode(),
        torch.autocast(device_type, dtype=dtype, enabled=dtype is not None),
    ):
        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            logits = head_logits(model, pad_token_id(tokenizer), [ids[i] for i in batch])
            scores[batch] = torch.log_softmax(logits.double(), dim=-1).cpu().numpy()
            if progress:
                progress(start + len(batch))
    return scores, None


APPROACH = Approach(
    name="head",
    label="LoRA + classification head",
    colour="#d55e00",
    peft_config=peft_config,
    uses_lora=True,
    scorer="head",
    check=check,
)
