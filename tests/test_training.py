"""Training on a tiny GPT-J loaded in 8-bit through bitsandbytes on the CPU: which parameters
train, that the base stays int8 and untouched, that loss falls, that outputs are honest and
complete, and that a saved adapter loads back to the same logits."""

from __future__ import annotations

import json
import os
import warnings

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from tiny_model import LAYERS, build_tiny_model  # noqa: E402

from adaptune.train import run as training  # noqa: E402
from adaptune.approaches.adapters import load_trained  # noqa: E402
from adaptune.core.io import write_json, write_jsonl  # noqa: E402
from adaptune.core.names import APPROACHES  # noqa: E402
from adaptune.train.run import LoraSettings, TrainSettings  # noqa: E402
from training_helpers import ENTRY, LABELS, TEMPLATE, make_rows, settings  # noqa: E402


# ---------------------------------------------------------------------------- settings


def test_settings_carry_the_schema_keys_for_truncation_and_extra_trainables():
    s = TrainSettings.from_params(
        {
            "approach": "lora_all",
            "learning_rate": 1e-3,
            "epochs": 1,
            "truncation_side": "right",
            "checkpoint_every_n_steps": 7,
            "lora": {
                "r": 4,
                "alpha": 8,
                "dropout": 0.0,
                "lm_head": True,
                "norms": True,
                "biases": False,
            },
        }
    )
    assert (
        s.truncation_side == "right" and s.checkpoint_every_n_steps == 7 and s.precision == "auto"
    )
    assert (s.lora.lm_head, s.lora.norms, s.lora.biases) == (True, True, False)
    assert (
        TrainSettings.from_params(
            {"approach": "layernorm", "learning_rate": 1e-3, "epochs": 1, "biases": True}
        ).biases
        is True
    )
    with pytest.raises(ValueError, match="truncation_side: got 'middle'"):
        TrainSettings.from_params(
            {
                "approach": "layernorm",
                "learning_rate": 1e-3,
                "epochs": 1,
                "truncation_side": "middle",
            }
        )


def test_settings_from_rule_params():
    params = {
        "approach": "lora_all",
        "learning_rate": 3e-4,
        "epochs": 2,
        "batch_size": 8,
        "enabled": True,
        "weight_decay": 0.0,
        "warmup_ratio": 0.1,
        "lora": {"r": 8, "alpha": 16, "dropout": 0.05, "embedding": True},
        "seed": 1,
        "precision": "32-true",
        "optimizer": "adamw8bit",
        "max_length": 96,
        "gradient_checkpointing": False,
        "quantization": "4bit",
        "labels": list(LABELS),
        "style": "instruction",
        "template": TEMPLATE,
        "model": ENTRY,
    }
    s = TrainSettings.from_params(params)
    assert s.lora == LoraSettings(8, 16, 0.05, True)
    assert s.labels == LABELS and s.quantization == "4bit" and s.optimizer == "adamw8bit"


@pytest.mark.parametrize(
    "params, message",
    [
        ({"approach": "prefix", "learning_rate": 1e-3, "epochs": 1}, "approach: got 'prefix'"),
        ({"approach": "layernorm", "learning_rate": 0, "epochs": 1}, "learning_rate: got 0"),
        (
            {"approach": "layernorm", "learning_rate": 1e-3, "epochs": 1, "lr": 1},
            r"unknown key\(s\) \['lr'\]",
        ),
        (
            {"approach": "lora_all", "learning_rate": 1e-3, "epochs": 1, "lora": {"rank": 8}},
            r"lora: unknown key\(s\) \['rank'\]",
        ),
        (
            {
                "approach": "lora_attention",
                "learning_rate": 1e-3,
                "epochs": 1,
                "lora": {"embedding": True},
            },
            "lora.embedding",
        ),
        (
            {"approach": "lora_all", "learning_rate": 1e-3, "epochs": 1, "precision": "fp8"},
            "precision: got 'fp8'",
        ),
        ({"approach": "lora_all", "learning_rate": 1e-3}, "epochs"),
    ],
)
def test_bad_settings_name_the_key(params, message):
    with pytest.raises(ValueError, match=message):
        TrainSettings.from_params(params)


# ---------------------------------------------------------------------------- batches


def test_collation_left_pads_and_masks_the_prompt(workspace):
    from transformers import AutoTokenizer

    from adaptune.train.data import Collator, encode_rows

    tokenizer = AutoTokenizer.from_pretrained(workspace["model"])
    rows = make_rows(3)
    rows[0]["prompt"] = "short\nCategory:"
    examples = encode_rows(tokenizer, rows, LABELS, max_length=96)
    batch = Collator(pad_token_id=tokenizer.pad_token_id)(examples)
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    width = ids.size(1)
    for i, example in enumerate(examples):
        n = len(example.prompt_ids) + len(example.completion_ids)
        assert mask[i].tolist() == [0] * (width - n) + [1] * n
        assert ids[i, width - n :].tolist() == example.prompt_ids + example.completion_ids
        c = len(example.completion_ids)
        assert labels[i, : width - c].eq(-100).all()
        assert labels[i, width - c :].tolist() == example.completion_ids
        # positions count from the first real token
        assert batch["position_ids"][i, width - n :].tolist() == list(range(n))
    assert batch["label_index"].tolist() == [0, 1, 2]


def test_truncation_keeps_the_prompt_end_and_the_completion(workspace):
    from transformers import AutoTokenizer

    from adaptune.train.data import encode_rows

    tokenizer = AutoTokenizer.from_pretrained(workspace["model"])
    row = make_rows(1)[0]
    row["prompt"] = TEMPLATE.format(labels=", ".join(LABELS), text=" ".join(["weather"] * 80))
    (example,) = encode_rows(tokenizer, [row], LABELS, max_length=20)
    assert len(example.prompt_ids) == 20
    assert tokenizer.decode(example.prompt_ids).endswith("weather\nCategory:")
    assert tokenizer.decode(example.completion_ids) == " hate"


def test_length_grouped_batches_are_a_seeded_partition_with_little_padding():
    import random

    from adaptune.train.data import LengthGroupedSampler, length_grouped_batches

    rng = random.Random(1)
    lengths = [rng.randint(20, 100) for _ in range(400)]
    batches = length_grouped_batches(lengths, batch_size=8, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(400))
    assert batches == length_grouped_batches(lengths, batch_size=8, seed=3)

    def padding(batches):
        return sum(
            max(lengths[j] for j in b) * len(b) - sum(lengths[j] for j in b) for b in batches
        )

    shuffled = list(range(400))
    random.Random(3).shuffle(shuffled)
    assert padding(batches) < padding([shuffled[i : i + 8] for i in range(0, 400, 8)]) / 4
    assert all(len(b) == 8 for b in batches)  # 400 = 50 x 8: no short batch
    sampler = LengthGroupedSampler(lengths, 8, seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_every_seed_and_epoch_has_an_order_of_its_own():
    """A seed's second epoch is not the next seed's first (as seed + epoch made it): each
    (seed, epoch) draws its order from a SeedSequence of both, reproducibly."""
    from adaptune.train.data import LengthGroupedSampler

    lengths = [20 + n % 50 for n in range(200)]

    def order(seed, epoch):
        sampler = LengthGroupedSampler(lengths, 8, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    orders = {(seed, epoch): order(seed, epoch) for seed in (42, 43, 44) for epoch in (0, 1, 2)}
    assert order(42, 1) == orders[42, 1]
    assert orders[42, 1] != orders[43, 0]
    assert orders[43, 1] != orders[44, 0]
    assert len({tuple(o) for o in orders.values()}) == len(orders)


def test_no_training_batch_spans_two_length_groups(workspace):
    """A split whose size is not a multiple of the batch size has a short batch; every batch the
    loader gives, in every epoch, is one run of the length-sorted examples."""
    from transformers import AutoTokenizer

    from adaptune.train.data import PromptDataModule

    rows = [
        {
            "id": str(n),
            "text": "t",
            "prompt": "good " * n,
            "completion": " " + LABELS[n % 3],
            "label": LABELS[n % 3],
        }
        for n in range(1, 11)
    ]
    write_jsonl(workspace["root"] / "ten.jsonl", rows)
    data = PromptDataModule(
        AutoTokenizer.from_pretrained(workspace["model"]),
        workspace["root"] / "ten.jsonl",
        workspace["val"],
        LABELS,
        batch_size=4,
        max_length=64,
        seed=0,
    )
    lengths = [len(e.prompt_ids) + len(e.completion_ids) for e in data.train_examples]
    assert len(set(lengths)) == 10
    by_length = sorted(range(10), key=lambda i: -lengths[i])  # 10 examples: one length group
    runs = sorted(sorted(by_length[j : j + 4]) for j in range(0, 10, 4))
    loader = data.train_dataloader()
    for epoch in range(4):
        loader.sampler.set_epoch(epoch)
        assert sorted(sorted(batch) for batch in loader.batch_sampler) == runs, f"epoch {epoch}"


def test_validation_accuracy_is_the_scorers_for_labels_of_several_tokens(workspace):
    """Completions of two tokens that start with the same token: the scorer sums every token's
    log-likelihood, and validation accuracy during training is computed the same way."""
    import numpy as np
    import pytorch_lightning as pl

    from adaptune.lm.models import load_model
    from adaptune.lm.scoring import ScoringSettings, score_labels
    from adaptune.train.data import PromptDataModule
    from adaptune.train.module import CompletionLM

    completions = {label: f" the {label}" for label in LABELS}
    rows = [{**row, "completion": completions[row["label"]]} for row in make_rows(12)]
    write_jsonl(workspace["root"] / "val_two_tokens.jsonl", rows)
    model, tokenizer = load_model(workspace["model"], "none")
    data = PromptDataModule(
        tokenizer,
        workspace["root"] / "val_two_tokens.jsonl",
        workspace["root"] / "val_two_tokens.jsonl",
        LABELS,
        batch_size=4,
        max_length=64,
        seed=0,
    )
    assert (
        all(len(ids) == 2 for ids in data.label_ids)
        and len({ids[0] for ids in data.label_ids}) == 1
    )
    module = CompletionLM(model, None, data.label_ids, data.collate.pad_token_id)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    (result,) = trainer.validate(module, datamodule=data, verbose=False)
    scores = score_labels(
        model,
        tokenizer,
        [r["prompt"] for r in rows],
        LABELS,
        ScoringSettings(batch_size=4, max_length=64),
        completions=list(completions.values()),
    )
    scorer_accuracy = np.mean(
        [LABELS[i] == r["label"] for i, r in zip(scores.argmax(axis=1), rows)]
    )
    assert result["val_accuracy"] == pytest.approx(scorer_accuracy)


def test_logits_to_keep_matches_full_logits_and_padding_does_not_matter(workspace):
    """The speed trick (lm_head on the last positions only) and left padding with position ids
    give the same label-position logits as running each prompt alone."""
    import torch

    from adaptune.lm.models import load_model
    from adaptune.train.data import Collator, encode_rows

    model, tokenizer = load_model(workspace["model"], "none")
    rows = make_rows(3)
    rows[1]["prompt"] += " and a much longer tail of words to force padding"
    examples = encode_rows(tokenizer, rows, LABELS, max_length=96)
    batch = Collator(tokenizer.pad_token_id)(examples)
    from adaptune.train.module import CompletionLM

    module = CompletionLM(model, settings("lora_all"), [[0], [1], [2]])
    with torch.no_grad():
        kept = module.completion_logits(batch)
        for i, example in enumerate(examples):
            alone = model(
                input_ids=torch.tensor([example.prompt_ids + example.completion_ids])
            ).logits
            # kept[:, 0] is the label position of single-token completions
            torch.testing.assert_close(
                kept[i, 0], alone[0, len(example.prompt_ids) - 1], rtol=1e-4, atol=1e-4
            )


# ---------------------------------------------------------------------------- trainable parameters


def _trainable_names(approach, workspace, **overrides):
    from adaptune.lm.models import load_model

    model, _ = load_model(workspace["model"], "8bit")
    model = training.make_trainable(model, settings(approach, **overrides), ENTRY)
    return model, {n for n, p in model.named_parameters() if p.requires_grad}


def test_layernorm_trains_only_norms(workspace):
    model, names = _trainable_names("layernorm", workspace)
    tuned = "ln_tuning_layers.default"  # PEFT LN tuning trains a copy of each norm layer
    expected = {
        f"base_model.model.transformer.h.{i}.ln_1.{tuned}.{p}"
        for i in range(LAYERS)
        for p in ("weight", "bias")
    }
    expected |= {
        f"base_model.model.transformer.ln_f.{tuned}.weight",
        f"base_model.model.transformer.ln_f.{tuned}.bias",
    }
    assert names == expected


@pytest.mark.parametrize(
    "approach, overrides, modules",
    [
        ("lora_attention", {}, {"q_proj", "k_proj", "v_proj", "out_proj"}),
        ("lora_all", {}, {"q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out"}),
        (
            "lora_all",
            {"lora": LoraSettings(r=4, embedding=True)},
            {"q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out", "wte"},
        ),
    ],
)
def test_lora_trains_only_adapters_on_the_named_modules(workspace, approach, overrides, modules):
    model, names = _trainable_names(approach, workspace, **overrides)
    assert names and all(".lora_" in n for n in names)
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names}
    assert adapted == modules
    assert not any("lm_head" in n for n in names)
    if "wte" not in modules:
        assert len(names) == 2 * LAYERS * len(modules)  # A and B per adapted module and block


# ---------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(workspace, tmp_path_factory):
    """Each approach trained once; the in-memory model is caught on its way to save_adapter."""
    from adaptune.lm.models import load_model

    reference, _ = load_model(workspace["model"], "8bit")
    int8_before = {
        n: p.detach().clone()
        for n, p in reference.named_parameters()
        if p.dtype.is_floating_point is False
    }
    results = {}
    original = training.save_adapter
    for approach in APPROACHES:
        caught = {}

        def catching(model, *args, **kwargs):
            caught["model"] = model
            return original(model, *args, **kwargs)

        training.save_adapter = catching
        try:
            out = tmp_path_factory.mktemp(approach) / "out"
            with warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("always")
                summary = training.train(
                    settings(approach),
                    workspace["train"],
                    workspace["val"],
                    workspace["model"],
                    out,
                )
        finally:
            training.save_adapter = original
        results[approach] = {
            "out": out,
            "summary": summary,
            "model": caught["model"],
            "warnings": [str(w.message) for w in warned],
        }
    results["int8_before"] = int8_before
    return results


def test_a_fresh_run_warns_of_no_checkpoint_folder(trained):
    for approach in APPROACHES:
        warned = [w for w in trained[approach]["warnings"] if "exists and is not empty" in w]
        assert not warned, warned


@pytest.mark.parametrize("approach", APPROACHES)
def test_training_writes_the_contract_outputs(trained, approach):
    out = trained[approach]["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "adapter",
        "curves.csv",
        "summary.json",
        "val_scores.csv",
    ]
    meta = json.loads((out / "adapter" / "adaptune_adapter.json").read_text())
    assert meta["approach"] == approach and meta["base_model"] == "tiny-gptj"
    assert (
        meta["labels"] == list(LABELS) and meta["template"] == TEMPLATE and meta["max_length"] == 96
    )
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    import pandas as pd

    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == [
        "step",
        "epoch",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "val_macro_f1",
    ]
    epochs = settings(approach).epochs
    assert curves["train_loss"].notna().sum() == 6 * epochs  # 6 steps per epoch, logged every step
    assert curves["val_accuracy"].notna().sum() == 1 + epochs  # before training and once per epoch
    # macro-F1 over each whole validation pass, logged beside its accuracy
    f1 = curves.dropna(subset=["val_macro_f1"])
    assert len(f1) == 1 + epochs and f1["val_macro_f1"].between(0, 1).all()
    assert f1["val_accuracy"].notna().all()
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "model",
        "approach",
        "style",
        "quantization",
        "trainable_parameters",
        "total_parameters",
        "epochs",
        "steps",
        "wall_time_s",
        "train_samples_per_second",
        "peak_memory_mb",
        "final_train_loss",
        "final_val_loss",
        "final_val_accuracy",
        "provenance",
    ):
        assert summary[key] is not None, key
    assert summary["steps"] == 6 * epochs and summary["epochs"] == epochs
    assert summary["quantization"] == "8bit"
    # "auto" without a decision file is fp32 on a CPU, recorded the same in the summary and the
    # adapter record; the record holds each field once.
    assert summary["precision"] == meta["precision"] == "32-true"
    from adaptune.approaches.adapters import RECORD_FIELDS

    assert not set(RECORD_FIELDS) & set(meta["settings"]) and meta["settings"]["seed"] == 0
    assert summary["frozen_weight_dtypes"] == ["float32"]  # 8-bit base: its norms and embeddings


@pytest.mark.parametrize("approach", APPROACHES)
def test_loss_falls(trained, approach):
    import pandas as pd

    curves = pd.read_csv(trained[approach]["out"] / "curves.csv")
    val = curves["val_loss"].dropna().tolist()
    assert val[-1] < val[0] - 0.05, val


@pytest.mark.parametrize("approach", APPROACHES)
def test_summary_counts_are_the_models(trained, approach):
    import torch

    model = trained[approach]["model"]
    summary = trained[approach]["summary"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    assert summary["trainable_parameters"] == trainable > 0
    assert summary["total_parameters"] == total
    base_elements = sum(
        p.numel() for p in model.parameters() if not p.requires_grad
    )  # the adapter is what trains
    assert summary["base_parameters"] == base_elements
    assert any(p.dtype == torch.int8 for p in model.parameters())


@pytest.mark.parametrize("approach", APPROACHES)
def test_base_weights_stay_int8_and_unchanged(trained, approach):
    import torch

    model = trained[approach]["model"]
    int8_after = {
        n.replace("base_model.model.", "").replace(".base_layer", ""): p
        for n, p in model.named_parameters()
        if not p.dtype.is_floating_point
    }
    before = trained["int8_before"]
    assert set(int8_after) == set(before) and len(before) == 6 * LAYERS
    for name, weight in before.items():
        assert int8_after[name].dtype == torch.int8
        assert torch.equal(int8_after[name], weight), name


@pytest.mark.parametrize("approach", APPROACHES)
def test_adapter_loads_back_to_the_same_logits(trained, workspace, approach):
    import torch

    from adaptune.train.data import Collator, encode_rows

    loaded, tokenizer, meta = load_trained(trained[approach]["out"] / "adapter", workspace["model"])
    assert meta["approach"] == approach and not loaded.training
    examples = encode_rows(tokenizer, make_rows(6), LABELS, 96)
    batch = Collator(tokenizer.pad_token_id)(examples)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids")}
    original = trained[approach]["model"].eval()
    with torch.no_grad():
        expected = original(**inputs).logits
        actual = loaded(**inputs).logits
    assert torch.equal(actual, expected)
    # ... and differ from the untrained base, so the adapter was applied at all
    from adaptune.lm.models import load_model

    base, _ = load_model(workspace["model"], "8bit")
    with torch.no_grad():
        assert not torch.equal(base(**inputs).logits, expected)


def test_load_trained_refuses_another_base(trained, workspace, tmp_path):
    other = build_tiny_model(tmp_path / "llama", "llama")
    write_json(other / "adaptune_model.json", {**ENTRY, "name": "tiny-llama"})
    with pytest.raises(ValueError, match="trained on base model 'tiny-gptj'.*holds 'tiny-llama'"):
        load_trained(trained["lora_all"]["out"] / "adapter", other)
    # same name, different architecture
    write_json(other / "adaptune_model.json", {**ENTRY, "name": "tiny-gptj"})
    with pytest.raises(ValueError, match="config hash"):
        load_trained(trained["layernorm"]["out"] / "adapter", other)


def test_load_trained_without_adapter_is_clear(workspace, tmp_path):
    with pytest.raises(ValueError, match="no such adapter directory"):
        load_trained(tmp_path / "missing", workspace["model"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="adaptune_adapter.json missing"):
        load_trained(tmp_path / "empty", workspace["model"])


def test_failed_training_leaves_nothing(workspace, tmp_path):
    bad = tmp_path / "val.jsonl"
    write_jsonl(bad, [{**make_rows(1)[0], "label": "spam"}])
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"val.jsonl: line 1: label 'spam'"):
        training.train(settings("layernorm"), workspace["train"], bad, workspace["model"], out)
    assert list(tmp_path.iterdir()) == [bad]


def test_settings_for_another_model_are_refused(workspace, tmp_path):
    s = settings("layernorm", model={**ENTRY, "name": "gpt-j-6b"})
    with pytest.raises(
        ValueError, match="holds model 'tiny-gptj' but the settings are for 'gpt-j-6b'"
    ):
        training.train(
            s, workspace["train"], workspace["val"], workspace["model"], tmp_path / "out"
        )


def test_nf4_base_with_8bit_adam_trains(workspace, tmp_path):
    """The other quantization and optimizer: NF4 base, bitsandbytes' AdamW8bit, a few steps."""
    from adaptune.lm.models import count_parameters, load_model

    s = settings(
        "lora_attention",
        quantization="4bit",
        optimizer="adamw8bit",
        max_steps=2,
        validate_first=False,
        precision="auto",
    )
    summary = training.train(
        s, workspace["train"], workspace["val"], workspace["model"], tmp_path / "out"
    )
    assert summary["steps"] == 2 and summary["quantization"] == "4bit"
    # "auto" was resolved (by a timing, so either answer is possible) and recorded as resolved.
    assert summary["precision"] in ("32-true", "bf16-mixed")
    full, _ = load_model(workspace["model"], "none")
    assert summary["base_parameters"] == count_parameters(full)
    assert (
        summary["total_parameters"] == summary["base_parameters"] + summary["trainable_parameters"]
    )
    model, _, meta = load_trained(tmp_path / "out" / "adapter", workspace["model"])
    assert meta["quantization"] == "4bit"
    assert any(p.__class__.__name__ == "Params4bit" for p in model.parameters())


@pytest.mark.parametrize("schedule, expected", [("constant", [0.01] * 9), ("linear", None)])
def test_lr_schedule_constant_keeps_the_peak_rate_and_linear_decays(schedule, expected):
    """The module's real optimizer and scheduler over 10 steps without warm-up."""
    from types import SimpleNamespace

    import torch

    from adaptune.train.module import CompletionLM

    module = CompletionLM(
        torch.nn.Linear(4, 4),
        settings("layernorm", learning_rate=0.01, warmup_ratio=0.0, lr_schedule=schedule),
        [[0], [1], [2]],
    )
    module._trainer = SimpleNamespace(estimated_stepping_batches=10)
    config = module.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(9):
        optimizer.step()
        scheduler.step()
        rates.append(round(optimizer.param_groups[0]["lr"], 8))
    if expected is not None:
        assert rates == expected
    else:
        assert rates == [round(0.01 * (10 - step) / 10, 8) for step in range(1, 10)]


def test_lr_schedule_must_be_known():
    with pytest.raises(ValueError, match="lr_schedule: got 'cosine'"):
        settings("layernorm", lr_schedule="cosine")


def test_epoch_orders_come_from_a_seed_sequence_of_seed_and_epoch():
    """Seed s's second epoch is not seed s+1's first (as it was under seed + epoch), no two of
    a few seeds' epochs share an order, and each order is the same when drawn again."""
    import random

    from adaptune.train.data import LengthGroupedSampler

    lengths = [random.Random(2).randint(20, 100) for _ in range(160)]

    def order(seed, epoch):
        sampler = LengthGroupedSampler(lengths, 8, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(42, 1) != order(43, 0)
    orders = [tuple(order(seed, epoch)) for seed in range(40, 46) for epoch in range(4)]
    assert len(set(orders)) == len(orders)
    assert order(42, 1) == order(42, 1)
    assert sorted(order(42, 1)) == list(range(160))


def _wsd_rates(epochs, steps_per_epoch=10, warmup_ratio=0.2, decay_ratio=0.3):
    """The rate after each step of the module's real optimizer and wsd scheduler."""
    from types import SimpleNamespace

    import torch

    from adaptune.train.module import CompletionLM

    module = CompletionLM(
        torch.nn.Linear(4, 4),
        settings(
            "layernorm",
            learning_rate=0.01,
            warmup_ratio=warmup_ratio,
            lr_schedule="wsd",
            decay_ratio=decay_ratio,
        ),
        [[0], [1], [2]],
    )
    module._trainer = SimpleNamespace(
        estimated_stepping_batches=steps_per_epoch * epochs,
        num_training_batches=steps_per_epoch,
        accumulate_grad_batches=1,
        max_epochs=epochs,
    )
    config = module.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    rates = [round(optimizer.param_groups[0]["lr"], 8)]
    for _ in range(steps_per_epoch * epochs):
        optimizer.step()
        scheduler.step()
        rates.append(round(optimizer.param_groups[0]["lr"], 8))
    return rates[:-1]  # the rate of each of the run's steps


def test_wsd_warms_up_holds_and_decays_to_zero_over_a_fraction_of_an_epoch():
    """Warm-up 2 steps (0.2 of a 10-step epoch), the peak rate, a 3-step decay at the run's end;
    a 3-epoch run agrees step for step with the 1- and 2-epoch runs until their decay starts,
    so a shorter run is a branch of the longest one."""
    one, two, three = _wsd_rates(1), _wsd_rates(2), _wsd_rates(3)
    assert one == [0.005, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.0075, 0.005, 0.0025]
    assert three[-3:] == one[-3:] and two[-3:] == one[-3:]
    assert two[:17] == three[:17] and one[:7] == two[:7] and one[7] != two[7]
    assert two[7:10] == [0.01] * 3 and (two[17], three[17]) == (0.0075, 0.01)


def test_wsd_needs_room_for_warmup_and_decay():
    with pytest.raises(ValueError, match="do not fit in 10 steps"):
        _wsd_rates(1, warmup_ratio=0.6, decay_ratio=0.5)
    with pytest.raises(ValueError, match="decay_ratio: got 0"):
        settings("layernorm", decay_ratio=0)
    # The schema's keys reach the settings from a rule's params.
    made = TrainSettings.from_params(
        {
            "approach": "layernorm",
            "learning_rate": 1e-3,
            "epochs": 2,
            "lr_schedule": "wsd",
            "decay_ratio": 0.2,
        }
    )
    assert (made.lr_schedule, made.decay_ratio) == ("wsd", 0.2)


def test_wsd_runs_of_one_and_two_epochs_agree_until_the_shorter_ones_decay(workspace, tmp_path):
    """A real tiny run: 48 tweets in batches of 8 is 6 steps an epoch, 2 of warm-up and 2 of
    decay. Stopped after 4 steps, where the 1-epoch run's decay starts, a 1-epoch and a 2-epoch
    wsd run hold the same weights (same data order, same rates), so the longer run's state there
    is the branch point of the shorter run. One step into the decay they differ."""
    import torch

    from adaptune.train import run as training
    from adaptune.approaches.adapters import load_trained

    def weights(epochs, steps):
        out = tmp_path / f"{epochs}-{steps}"
        training.train(
            settings(
                "layernorm",
                epochs=epochs,
                lr_schedule="wsd",
                warmup_ratio=0.34,
                decay_ratio=0.34,
                max_steps=steps,
                quantization="none",
                validate_first=False,
            ),
            workspace["train"],
            workspace["val"],
            workspace["model"],
            out,
        )
        model, _, _ = load_trained(out / "adapter", workspace["model"])
        return {
            n: p.detach().clone() for n, p in model.named_parameters() if "norm" in n or "ln" in n
        }

    one, two = weights(1, 4), weights(2, 4)
    assert one and all(torch.equal(one[n], two[n]) for n in one)
    one, two = weights(1, 5), weights(2, 5)
    assert not all(torch.equal(one[n], two[n]) for n in one)
