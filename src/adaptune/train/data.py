"""Prompt/completion examples as token rows for causal-LM fine-tuning.

Each row is LEFT padded with the completion at its very end: the completion tokens of every row
then sit in the last positions of the batch, so the model needs to run its lm_head only on the
last `max completion length + 1` positions (`logits_to_keep`), which on a CPU is a large part of a
step's time for a small model. The loss covers the completion tokens only (the prompt and the
padding are labelled -100).

Truncation keeps a prompt's last `max_length` tokens: the end of the message and the template's
tail ("Category:") survive, the start goes. Scoring must encode prompts the same way, with
`adaptune.lm.encoding`; the padding itself is `adaptune.lm.encoding`, shared with scoring.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from adaptune.data.prompts import completion, read_prompts
from adaptune.lm.encoding import encode_completion, encode_prompts, left_padded, pad_token_id
from adaptune.lm.scoring import completion_ids
from adaptune.train.schedule import epoch_seed

IGNORE = -100


def label_completions(rows: list[dict], labels) -> dict[str, str]:
    """label -> its completion, as the rows write it (" <label>" when no row has that label)."""
    seen: dict[str, str] = {}
    for row in rows:
        previous = seen.setdefault(row["label"], row["completion"])
        if previous != row["completion"]:
            raise ValueError(
                f"label {row['label']!r} has two completions: "
                f"{previous!r} and {row['completion']!r}"
            )
    return {label: seen.get(label, completion(label)) for label in labels}


@dataclass
class Example:
    prompt_ids: list[int]
    completion_ids: list[int]
    label_index: int


class ExampleDataset(Dataset):
    def __init__(self, examples: list[Example]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> Example:
        return self.examples[index]


def encode_rows(
    tokenizer, rows: list[dict], labels, max_length: int, truncation_side: str | None = None
) -> list[Example]:
    labels = list(labels)
    prompt_ids = encode_prompts(
        tokenizer, [row["prompt"] for row in rows], max_length, truncation_side
    )
    return [
        Example(
            prompt_ids=ids,
            completion_ids=encode_completion(tokenizer, row["completion"]),
            label_index=labels.index(row["label"]),
        )
        for row, ids in zip(rows, prompt_ids)
    ]


class Collator:
    """Left-pad a list of examples into input_ids, attention_mask, position_ids and labels;
    with `buckets`, further to the length buckets of adaptune.hardware.compilation (a compiled
    model's shapes)."""

    def __init__(self, pad_token_id: int, buckets: bool = False):
        self.pad_token_id = pad_token_id
        self.buckets = buckets

    def __call__(self, batch: list[Example]) -> dict[str, torch.Tensor]:
        layout = left_padded([e.prompt_ids + e.completion_ids for e in batch], self.pad_token_id)
        labels = torch.full_like(layout["input_ids"], IGNORE)
        for i, example in enumerate(batch):
            n = len(example.completion_ids)
            labels[i, labels.size(1) - n :] = torch.tensor(example.completion_ids)
        if self.buckets:
            from adaptune.hardware.compilation import pad_to_bucket

            layout = pad_to_bucket({**layout, "labels": labels}, self.pad_token_id)
            labels = layout.pop("labels")
        return {
            **layout,
            "labels": labels,
            "completion_length": max(len(e.completion_ids) for e in batch),
            "label_index": torch.tensor([e.label_index for e in batch]),
            "label_length": torch.tensor([len(e.completion_ids) for e in batch]),
            # The prompts alone, for scoring every label's completion after them (validation).
            "prompt_ids": [e.prompt_ids for e in batch],
        }


def length_grouped_batches(
    lengths: list[int], batch_size: int, seed: int, group: int = 16
) -> list[list[int]]:
    """Shuffled batches in which each run of `group` batches is cut from examples sorted by
    length, so the examples of a batch have similar lengths and little padding. Only the last
    run can end in a short batch (when the split is not a multiple of `batch_size`): it comes
    last, so that a loader cutting the order into batches of `batch_size` cuts these batches,
    none of them across two length groups."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * group
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i], reverse=True)
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    short = batches.pop() if batches and len(batches[-1]) < batch_size else None
    rng.shuffle(batches)
    return batches + ([short] if short else [])


def length_grouped_order(
    lengths: list[int], batch_size: int, seed: int, group: int = 16
) -> list[int]:
    """The examples of length_grouped_batches in their order."""
    return [i for batch in length_grouped_batches(lengths, batch_size, seed, group) for i in batch]


class LengthGroupedSampler(torch.utils.data.Sampler):
    """A new length-grouped shuffle every epoch, fixed by the seed and the epoch number through
    schedule.epoch_seed (Lightning calls set_epoch before each epoch).

    The order is grouped by the examples of one optimizer step (`samples_per_step`: the batch
    times the micro-batches accumulated times the DDP processes), so a step sees the same
    examples however it is split. Under DDP (`replicas` > 1) this process takes every
    `replicas`-th example from position `rank`: its consecutive micro-batches then fall within
    the same steps as the others'. The order is cut to a multiple of `replicas` so every
    process runs as many batches."""

    def __init__(
        self, lengths: list[int], samples_per_step: int, seed: int, rank: int = 0, replicas: int = 1
    ):
        self.lengths, self.samples_per_step, self.seed = lengths, samples_per_step, seed
        self.rank, self.replicas = rank, replicas
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        seed = epoch_seed(self.seed, self.epoch)
        order = length_grouped_order(self.lengths, self.samples_per_step, seed)
        return iter(order[: len(self) * self.replicas][self.rank :: self.replicas])

    def __len__(self) -> int:
        return len(self.lengths) // self.replicas


class ResumableLoader(DataLoader):
    """A DataLoader that resumes mid-epoch: given `resume` (epoch, batches done), its passes over
    that epoch skip those batches of the epoch's seeded order. Lightning may start a pass more
    than once while it restores, so the skip holds for the whole epoch."""

    def __init__(self, *args, resume: tuple[int, int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.resume = resume
        if resume is not None:
            self.sampler.set_epoch(resume[0])

    def __iter__(self):
        iterator = super().__iter__()
        if self.resume is not None:
            epoch, skip = self.resume
            if self.sampler.epoch != epoch:
                self.resume = None
            else:
                for _ in range(skip):
                    next(iterator, None)
        return iterator


class PromptDataModule(pl.LightningDataModule):
    """Train and validation prompts of one style, tokenized once."""

    def __init__(
        self,
        tokenizer,
        train_path: str | os.PathLike,
        val_path: str | os.PathLike,
        labels,
        batch_size: int,
        max_length: int,
        seed: int,
        eval_batch_size: int | None = None,
        truncation_side: str | None = None,
        samples_per_step: int | None = None,
        pad_to_buckets: bool = False,
    ):
        super().__init__()
        self.tokenizer = tokenizer
        self.train_path, self.val_path = Path(train_path), Path(val_path)
        self.labels = list(labels)
        self.batch_size = batch_size
        self.samples_per_step = samples_per_step or batch_size  # see LengthGroupedSampler
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.max_length = max_length
        self.seed = seed
        self.collate = Collator(pad_token_id(tokenizer), buckets=pad_to_buckets)
        self._resume: tuple[int, int] | None = None  # set when Lightning restores a checkpoint
        train_rows = read_prompts(self.train_path, self.labels)
        val_rows = read_prompts(self.val_path, self.labels)
        # The label set scored for validation accuracy is read off the validation completions.
        self.completions = label_completions(val_rows, self.labels)
        # Each label's completion tokens, as the scorer encodes them.
        self.label_ids = completion_ids(
            tokenizer, self.labels, [self.completions[label] for label in self.labels]
        )
        self.train_examples = encode_rows(
            tokenizer, train_rows, self.labels, max_length, truncation_side
        )
        self.val_examples = encode_rows(
            tokenizer, val_rows, self.labels, max_length, truncation_side
        )
        self.val_ids = [row["id"] for row in val_rows]
        # Sorted by length: least padding, and validation needs no shuffling.
        self.val_order = sorted(
            range(len(self.val_examples)), key=lambda i: len(self.val_examples[i].prompt_ids)
        )

    def train_dataloader(self) -> DataLoader:
        lengths = [len(e.prompt_ids) + len(e.completion_ids) for e in self.train_examples]
        return ResumableLoader(
            ExampleDataset(self.train_examples),
            batch_size=self.batch_size,
            sampler=LengthGroupedSampler(
                lengths,
                self.samples_per_step,
                self.seed,
                rank=self.trainer.global_rank if self.trainer else 0,
                replicas=self.trainer.world_size if self.trainer else 1,
            ),
            collate_fn=self.collate,
            resume=self._resume,
        )

    def state_dict(self) -> dict:
        """Where training stands in the data, saved in checkpoints: checkpoints are written at the
        end of a training batch, once it is processed."""
        loop = self.trainer.fit_loop
        return {
            "epoch": loop.epoch_progress.current.processed,
            "batches_done": loop.epoch_loop.batch_progress.current.processed,
        }

    def load_state_dict(self, state: dict) -> None:
        self._resume = (int(state["epoch"]), int(state["batches_done"]))

    def val_dataloader(self) -> DataLoader:
        examples = [self.val_examples[i] for i in self.val_order]
        return DataLoader(
            ExampleDataset(examples),
            batch_size=self.eval_batch_size,
            shuffle=False,
            collate_fn=self.collate,
        )
