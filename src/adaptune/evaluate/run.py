"""Score prompts files with a model and write each split's predictions.csv + metrics.json.

Two systems go through here: a fine-tuned adapter on its base model (`evaluate_adapter`) and the
base model prompted with k demonstrations (`evaluate_fewshot`). Each loads its model once and
scores every split it is given. The loglik_<label> columns of predictions.csv are per-label
log-scores (natural log; the predicted label has the highest): the label log-likelihoods of
adaptune.lm.scoring, or for a classification head the log-softmax of its logits.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from adaptune.core.config import schema_defaults, schema_fields
from adaptune.core.names import LOGLIK, headline_last, score_column
from adaptune.core.provenance import Stopwatch, provenance
from adaptune.data.prompts import read_prompts
from adaptune.evaluate.metrics import evaluation_record, system_info, write_evaluation

log = logging.getLogger(__name__)
_FEWSHOT = schema_defaults("evaluation", "fewshot")


@dataclass(frozen=True)
@schema_fields("evaluation")  # the defaults
class EvaluationSettings:
    """Config `evaluation` (the keys used here)."""

    batch_size: int
    bootstrap_samples: int
    seed: int
    fewshot_max_length: int = _FEWSHOT["max_length"]  # prompt tokens kept for few-shot prompts
    fewshot_instruction: str = _FEWSHOT["instruction"]  # written once, before the demonstrations
    fewshot_separator: str = _FEWSHOT["separator"]  # after each demonstration

    def __post_init__(self) -> None:
        for key in ("batch_size", "bootstrap_samples", "fewshot_max_length"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"evaluation.{key}: got {value!r}, expected an integer >= 1")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"evaluation.seed: got {self.seed!r}, expected an integer >= 0")

    @classmethod
    def from_config(cls, evaluation: dict) -> "EvaluationSettings":
        """From (part of) config `evaluation`; keys left out take the schema's defaults."""
        fewshot = evaluation.get("fewshot") or {}
        return cls(
            batch_size=int(evaluation.get("batch_size", cls.batch_size)),
            bootstrap_samples=int(evaluation.get("bootstrap_samples", cls.bootstrap_samples)),
            seed=int(evaluation.get("seed", cls.seed)),
            fewshot_max_length=int(fewshot.get("max_length", cls.fewshot_max_length)),
            fewshot_instruction=str(fewshot.get("instruction", cls.fewshot_instruction)),
            fewshot_separator=str(fewshot.get("separator", cls.fewshot_separator)),
        )


def predictions_frame(
    records: Sequence[dict], scores, labels: Sequence[str], vocab_choice=None
) -> pd.DataFrame:
    """One row per record: gold, predicted, each label's log-likelihood (loglik_<label>); with
    `vocab_choice` (label index of the whole-vocabulary argmax, -1 for none) also predicted_vocab
    ("" where no label won)."""
    from adaptune.lm.scoring import predicted_labels

    frame = pd.DataFrame(
        {
            "id": [r["id"] for r in records],
            "text": [r["text"] for r in records],
            "gold": [r["label"] for r in records],
            "predicted": predicted_labels(scores, labels),
        }
    )
    if vocab_choice is not None:
        frame["predicted_vocab"] = [labels[j] if j >= 0 else "" for j in vocab_choice]
    for j, label in enumerate(labels):
        frame[score_column(LOGLIK, label)] = scores[:, j]
    return frame


def score_records(
    model,
    tokenizer,
    records: Sequence[dict],
    labels: Sequence[str],
    settings,
    prompts: Sequence[str] | None = None,
    completions: Sequence[str] | None = None,
    scorer=None,
) -> tuple[pd.DataFrame, float]:
    """(predictions frame, examples per second) of the records' prompts (or `prompts`), scored by
    `scorer` (an approach's, adaptune.approaches.prompt_scorer; default adaptune.lm.scoring's)."""
    from adaptune.lm.scoring import score_with_vocab

    score = scorer or score_with_vocab

    prompts = list(prompts) if prompts is not None else [r["prompt"] for r in records]
    total = len(prompts)
    step = max(1, total // 10)
    reported = [0]

    def progress(done: int) -> None:
        if done - reported[0] >= step or done == total:
            reported[0] = done
            log.info("scored %d/%d prompts", done, total)

    clock = Stopwatch()
    scores, vocab_choice = score(model, tokenizer, prompts, labels, settings, progress, completions)
    return predictions_frame(records, scores, labels, vocab_choice), total / max(
        clock.seconds, 1e-9
    )


def _write(
    out_dir,
    frame,
    system,
    split,
    labels,
    settings: EvaluationSettings,
    speed,
    config_section,
    stopwatch,
):
    record = evaluation_record(
        system,
        split,
        frame["gold"].tolist(),
        frame["predicted"].tolist(),
        labels,
        examples_per_second=speed,
        provenance=provenance(config_section, settings.seed, stopwatch),
        bootstrap_samples=settings.bootstrap_samples,
        seed=settings.seed,
    )
    if "predicted_vocab" in frame:
        # The reference study's metric: right only where the label's token is the most likely
        # token of the whole vocabulary.
        record["vocab_argmax_accuracy"] = float((frame["predicted_vocab"] == frame["gold"]).mean())
    write_evaluation(out_dir, frame, record)
    log.info(
        "%s %s: accuracy %.3f, macro-F1 %.3f (n=%d, %.1f examples/s)",
        system["name"],
        split,
        record["accuracy"],
        record["macro_f1"],
        record["n"],
        speed,
    )
    return record


def _check_splits(prompt_files: dict, outputs: dict) -> None:
    if not prompt_files or set(prompt_files) != set(outputs):
        raise ValueError(
            f"splits to score {sorted(prompt_files)} and output directories {sorted(outputs)} "
            "must name the same, non-empty set of splits"
        )


def reused_scores(
    path: str | os.PathLike, records: Sequence[dict], labels: Sequence[str]
) -> pd.DataFrame | None:
    """The predictions frame of `records` from training's final validation scores (adaptune.
    training.VAL_SCORES), or None where that file does not cover exactly these records' ids with
    every label's score (multi-token labels, another val split)."""
    path = Path(path)
    if not path.is_file():
        return None
    frame = pd.read_csv(path, dtype={"id": str, "vocab_choice": str}, keep_default_na=False)
    from adaptune.core.names import LOGLIK, score_column

    columns = [score_column(LOGLIK, label) for label in labels]
    ids = [r["id"] for r in records]
    if any(c not in frame for c in columns) or sorted(frame["id"]) != sorted(ids):
        return None
    by_id = frame.set_index("id").loc[ids]
    vocab = (
        [labels.index(v) if v in labels else -1 for v in by_id["vocab_choice"]]
        if "vocab_choice" in by_id
        else None
    )
    return predictions_frame(records, by_id[columns].to_numpy(dtype=float), labels, vocab)


def evaluate_adapter(
    model_dir: str | os.PathLike,
    adapter_dir: str | os.PathLike,
    prompt_files: dict[str, str | os.PathLike],
    outputs: dict[str, str | os.PathLike],
    settings: EvaluationSettings,
    name: str,
    config_section: dict,
    quantization: str | None = None,
    val_scores: str | os.PathLike | None = None,
    val_examples_per_second: float | None = None,
) -> dict[str, dict]:
    """Score each split's prompts (split -> jsonl) with the fine-tuned model and write its
    evaluation into outputs[split]. Uses the adapter's labels, completions and max_length.
    The val split is not scored again where `val_scores` (training's final validation pass with
    this adapter, adaptune.train.run.VAL_SCORES) covers it: its scores are the scorer's (label
    token log-likelihoods in float64 at the label position), computed once."""
    from adaptune.approaches.adapters import load_trained, prompt_scorer, record_completions
    from adaptune.data.prompts import render
    from adaptune.hardware.precision import prepare_for_inference
    from adaptune.lm.scoring import ScoringSettings

    _check_splits(prompt_files, outputs)
    stopwatch = Stopwatch()
    model, tokenizer, meta = load_trained(adapter_dir, model_dir, quantization)
    labels = list(meta["labels"])
    # Scored as the adapter was trained: its completions, max_length, truncation side and
    # precision (resolved when it trained).
    scoring = ScoringSettings(
        batch_size=settings.batch_size,
        max_length=int(meta["max_length"]),
        truncation_side=meta["truncation_side"],
        precision=meta["precision"],
    )
    prepare_for_inference(model, scoring.precision)
    system = system_info(
        meta["base_model"],
        meta["approach"],
        name,
        meta.get("style"),
        None,
        quantization or meta["quantization"],
        seed=meta["settings"]["seed"],
    )
    section = {
        **config_section,
        "adapter": {
            k: meta.get(k)
            for k in ("approach", "base_model", "quantization", "style", "max_length")
        },
        "precision": scoring.precision,
    }
    results = {}
    for split in headline_last(prompt_files):
        path = prompt_files[split]
        records = read_prompts(path, labels)
        template = meta.get("template")
        if template and render(template, records[0]["text"], labels) != records[0]["prompt"]:
            raise ValueError(
                f"{path}: its prompts were not made with the template "
                f"the adapter {adapter_dir} was "
                f"trained with ({template!r}); rerun format_prompts or retrain"
            )
        reused = None
        if (
            split == "val"
            and val_scores is not None
            and quantization in (None, meta["quantization"])
        ):
            reused = reused_scores(val_scores, records, labels)
        if reused is not None:
            log.info(
                "%s: reusing the scores of training's final validation pass (%s)", split, val_scores
            )
            frame, speed = reused, val_examples_per_second or 0.0
            these = {**section, "scored_by": "training's final validation pass"}
        else:
            frame, speed = score_records(
                model,
                tokenizer,
                records,
                labels,
                scoring,
                completions=record_completions(meta),
                scorer=prompt_scorer(meta["approach"]),
            )
            these = section
        results[split] = _write(
            outputs[split], frame, system, split, labels, settings, speed, these, stopwatch
        )
    return results


def evaluate_fewshot(
    model_dir: str | os.PathLike,
    quantization: str,
    train_prompts: str | os.PathLike,
    prompt_files: dict[str, str | os.PathLike],
    outputs: dict[str, str | os.PathLike],
    k: int,
    labels: Sequence[str],
    style: str,
    settings: EvaluationSettings,
    name: str,
    config_section: dict,
    fixed: Sequence[dict] | None = None,
    precision: str = "auto",
    precision_file: str | os.PathLike | None = None,
) -> dict[str, dict]:
    """Score each split with the base model and k demonstrations per query from `train_prompts`
    (or the `fixed` demonstrations, records with prompt, completion and id, for every query),
    under `precision` (adaptune.hardware.precision; "auto" reads the decision in
    `precision_file`)."""
    from adaptune.data.prompts import build_fewshot_prompts
    from adaptune.hardware.precision import prepare_for_inference, resolve
    from adaptune.lm.models import load_model, model_entry
    from adaptune.lm.scoring import ScoringSettings

    _check_splits(prompt_files, outputs)
    if "train" in prompt_files:
        raise ValueError(
            "few-shot demonstrations come from the train split; it cannot also be evaluated"
        )
    stopwatch = Stopwatch()
    labels = list(labels)
    pool = read_prompts(train_prompts, labels)
    model, tokenizer = load_model(model_dir, quantization)
    scoring = ScoringSettings(
        batch_size=settings.batch_size,
        max_length=settings.fewshot_max_length,
        precision=resolve(precision, precision_file),
    )
    prepare_for_inference(model, scoring.precision)
    config_section = {**config_section, "precision": scoring.precision}
    system = system_info(model_entry(model_dir)["name"], "fewshot", name, style, k, quantization)
    results = {}
    for split in headline_last(prompt_files):
        path = prompt_files[split]
        records = read_prompts(path, labels)
        prompts, _ = build_fewshot_prompts(
            records,
            pool,
            labels,
            k,
            settings.seed,
            split=f"{path}",
            fixed=fixed,
            instruction=settings.fewshot_instruction,
            separator=settings.fewshot_separator,
        )
        frame, speed = score_records(model, tokenizer, records, labels, scoring, prompts=prompts)
        results[split] = _write(
            outputs[split], frame, system, split, labels, settings, speed, config_section, stopwatch
        )
    return results


def split_directories(splits: Sequence[str], outputs: Sequence[str]) -> dict[str, Path]:
    """Each split's directory from a rule's outputs, listed as eval_files lists them:
    predictions.csv then metrics.json of each split in turn."""
    if len(outputs) != 2 * len(splits):
        raise ValueError(f"expected 2 outputs per split {list(splits)}, got {list(outputs)}")
    directories = {}
    for i, split in enumerate(splits):
        predictions, metrics = Path(outputs[2 * i]), Path(outputs[2 * i + 1])
        if predictions.name != "predictions.csv" or metrics != predictions.parent / "metrics.json":
            raise ValueError(
                f"outputs of split {split!r}: "
                "expected <dir>/predictions.csv and <dir>/metrics.json, "
                f"got {predictions} and {metrics}"
            )
        directories[split] = predictions.parent
    return directories
