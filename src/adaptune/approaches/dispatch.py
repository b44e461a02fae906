"""What scoring needs of an approach: the base model it loads and the scorer that turns its
prompts into per-label scores. Apart from the registry, which the data and report steps import
through adaptune.names and which must stay free of torch and transformers."""

from __future__ import annotations

from adaptune.approaches import get


def load_base(name: str, model_dir, quantization: str, labels=None, **options):
    """(model, tokenizer): the base model as approach `name` trains and scores on it: a causal
    LM (adaptune.models.load_model), or for a head scorer a sequence classifier over `labels`.
    `options`: load_model's dtype and device."""
    if get(name).scorer == "head":
        from adaptune.approaches.head import load_classifier

        return load_classifier(model_dir, quantization, labels, **options)
    from adaptune.models import load_model

    return load_model(model_dir, quantization, **options)


def prompt_scorer(name: str):
    """How approach `name` gives prompts per-label scores: a function (model, tokenizer,
    prompts, labels, settings, progress, completions) -> (scores, vocabulary argmax or None), as
    adaptune.scoring.score_with_vocab."""
    if get(name).scorer == "head":
        from adaptune.approaches.head import score_prompts

        return score_prompts
    from adaptune.scoring import score_with_vocab

    return score_with_vocab
