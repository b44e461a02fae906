"""The LightningModules of training, and a timer callback: CompletionLM fine-tunes a causal LM
on completion tokens; HeadLM, its subclass, trains a classification head with cross-entropy on
the label (the approaches whose scorer is "head").

Validation accuracy and macro-F1 are the scorer's: each label's completion log-likelihood,
summed over its tokens. Where every label is one token, that is the label position's log-softmax
(adaptune.lm.scoring.label_log_probs) on the logits the validation loss already computed; else the
scorer itself (adaptune.lm.scoring.score_ids) scores each prompt with every label's completion.
Macro-F1 is taken over the whole validation pass, as adaptune.evaluate.metrics computes it."""

from __future__ import annotations

import math
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from adaptune.approaches.head import head_logits
from adaptune.lm.encoding import last_logits
from adaptune.lm.scoring import label_log_probs, score_ids


class CompletionLM(pl.LightningModule):
    """Causal LM trained on completion tokens; validation also scores the label words."""

    def __init__(self, model, settings, label_ids: list[list[int]], pad_id: int = 0):
        super().__init__()
        self.model = model
        self.settings = settings
        self.label_ids = [list(ids) for ids in label_ids]  # each label's completion tokens
        self.pad_id = pad_id
        single = all(len(ids) == 1 for ids in self.label_ids)
        # The labels' tokens where each is one token: scored from the batch's own logits.
        self.register_buffer(
            "label_tokens",
            torch.tensor([ids[0] for ids in self.label_ids] if single else []),
            persistent=False,
        )
        self._epoch_losses: list[float] = []
        self.epoch_train_losses: list[float] = []
        # The last validation pass's per-row label scores, in val_dataloader order, with the step
        # it ran at and its seconds: the evaluation of the val split reuses the final one.
        self.val_scores, self.val_vocab, self.val_step, self.val_seconds = [], [], None, 0.0
        self._val_choices: list[torch.Tensor] = []
        self._val_gold: list[torch.Tensor] = []
        # Checkpoints hold the trainable parameters only (the frozen base is reloaded).
        self.strict_loading = False

    def on_save_checkpoint(self, checkpoint):
        trainable = {
            f"model.{name}" for name, p in self.model.named_parameters() if p.requires_grad
        }
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if k in trainable
        }
        checkpoint["epoch_train_losses"] = list(self.epoch_train_losses)
        checkpoint["epoch_losses"] = list(self._epoch_losses)

    def on_load_checkpoint(self, checkpoint):
        self.epoch_train_losses = list(checkpoint.get("epoch_train_losses", []))
        self._epoch_losses = list(checkpoint.get("epoch_losses", []))

    def completion_logits(self, batch):
        """Logits of the last completion_length + 1 positions: those that predict the
        completion tokens (and one past, unused)."""
        return last_logits(self.model, batch, keep=int(batch["completion_length"]) + 1)

    def completion_loss(self, logits, batch):
        width = int(batch["completion_length"])
        targets = batch["labels"][:, -width:]
        predictions = logits[:, :-1].float()
        return F.cross_entropy(
            predictions.reshape(-1, predictions.size(-1)), targets.reshape(-1), ignore_index=-100
        )

    def training_step(self, batch, batch_idx):
        loss = self.completion_loss(self.completion_logits(batch), batch)
        size = batch["input_ids"].size(0)
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=size)
        self._epoch_losses.append(loss.item())
        return loss

    def on_train_epoch_end(self):
        if self._epoch_losses:
            self.epoch_train_losses.append(sum(self._epoch_losses) / len(self._epoch_losses))
        self._epoch_losses = []

    def on_validation_epoch_start(self):
        self.val_scores, self.val_vocab, self._val_start = [], [], time.perf_counter()

    def validation_step(self, batch, batch_idx):
        logits = self.completion_logits(batch)
        loss = self.completion_loss(logits, batch)
        gold = batch["label_index"]
        scores, vocab = self.label_scores(logits, batch)
        self.val_scores.append(scores.detach().cpu())
        if vocab is not None:
            self.val_vocab.append(vocab.cpu())
        choices = scores.argmax(-1).to(gold.device)
        accuracy = (choices == gold).float().mean()
        self._val_choices.append(choices.detach().cpu())
        self._val_gold.append(gold.detach().cpu())
        size = batch["input_ids"].size(0)
        # Under DDP every process scores the whole validation split: the values agree.
        self.log(
            "val_loss",
            loss,
            on_epoch=True,
            prog_bar=True,
            batch_size=size,
            sync_dist=self._distributed,
        )
        self.log(
            "val_accuracy",
            accuracy,
            on_epoch=True,
            prog_bar=True,
            batch_size=size,
            sync_dist=self._distributed,
        )

    def score_loader(self, loader) -> dict[str, float]:
        """val_loss, val_accuracy and val_macro_f1 of the model as it stands on every batch of
        `loader`, as a validation pass logs them, without logging (adaptune.train.schedule)."""
        from adaptune.evaluate.metrics import macro_f1_rows

        was_training = self.training
        self.eval()
        losses, sizes, choices, gold = [], [], [], []
        with torch.no_grad():
            for batch in loader:
                batch = {
                    k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()
                }
                logits = self.completion_logits(batch)
                scores, _ = self.label_scores(logits, batch)
                losses.append(float(self.completion_loss(logits, batch)))
                sizes.append(batch["input_ids"].size(0))
                choices.append(scores.argmax(-1).cpu())
                gold.append(batch["label_index"].cpu())
        self.train(was_training)
        chosen, gold = torch.cat(choices).numpy(), torch.cat(gold).numpy()
        f1 = macro_f1_rows(gold[None], chosen[None], len(self.label_ids))[0]
        return {
            "val_loss": sum(l * n for l, n in zip(losses, sizes)) / sum(sizes),
            "val_accuracy": float((chosen == gold).mean()),
            "val_macro_f1": float(f1),
        }

    @property
    def _distributed(self) -> bool:
        return self._trainer is not None and self.trainer.world_size > 1

    def label_scores(self, logits, batch):
        """Each row's label scores, as adaptune.lm.scoring gives them, and, where every label is one
        token, each row's most likely token of the whole vocabulary at the label position (else
        None)."""
        if len(self.label_tokens):
            # The label position predicts a row's first completion token; with the completion
            # at the row's end it is kept position (completion_length - that row's length).
            rows = torch.arange(logits.size(0), device=logits.device)
            position = int(batch["completion_length"]) - batch["label_length"].to(logits.device)
            log_probs, scores = label_log_probs(logits[rows, position], self.label_tokens)
            return scores, log_probs.argmax(-1)
        scores, _ = score_ids(
            self.model,
            self.pad_id,
            batch["prompt_ids"],
            self.label_ids,
            batch_size=len(batch["prompt_ids"]) * len(self.label_ids),
        )
        return torch.from_numpy(scores), None

    def on_validation_epoch_end(self):
        self.val_step, self.val_seconds = (
            int(self.global_step),
            time.perf_counter() - self._val_start,
        )
        # Macro-F1 needs the whole pass, not a mean over batches.
        if self._val_choices:
            from adaptune.evaluate.metrics import macro_f1_rows

            gold = torch.cat(self._val_gold).numpy()[None]
            chosen = torch.cat(self._val_choices).numpy()[None]
            self.log(
                "val_macro_f1",
                float(macro_f1_rows(gold, chosen, len(self.label_ids))[0]),
                sync_dist=self._distributed,
            )
        self._val_choices, self._val_gold = [], []

    def configure_optimizers(self):
        from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

        params = [p for p in self.model.parameters() if p.requires_grad]
        s = self.settings
        if s.optimizer == "adamw8bit":
            import bitsandbytes as bnb

            optimizer = bnb.optim.AdamW8bit(params, lr=s.learning_rate, weight_decay=s.weight_decay)
        else:
            optimizer = torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=s.weight_decay)
        total = int(self.trainer.estimated_stepping_batches)
        warmup = round(s.warmup_ratio * total)
        if s.lr_schedule == "constant":
            schedule = get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup)
        elif s.lr_schedule == "wsd":
            from adaptune.train.schedule import wsd_multiplier

            # Steps per epoch from the loader, not from total: max_steps may cut the run short.
            t = self.trainer
            per_epoch = math.ceil(t.num_training_batches / t.accumulate_grad_batches)
            rate = wsd_multiplier(per_epoch, t.max_epochs, s.warmup_ratio, s.decay_ratio)
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
        else:
            schedule = get_linear_schedule_with_warmup(
                optimizer, num_warmup_steps=warmup, num_training_steps=total
            )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class TrainTimer(pl.Callback):
    """Seconds and examples spent in training steps (validation and setup excluded). With a
    stopwatch it also keeps the wall time of the earlier attempts of a resumed run: its state,
    saved in every checkpoint, carries all three into the attempt that resumes from it."""

    def __init__(self, stopwatch=None):
        self.seconds, self.samples, self._start = 0.0, 0, 0.0
        self.stopwatch, self.earlier_wall_s, self.attempts = stopwatch, 0.0, 1

    @property
    def wall_s(self) -> float:
        """Wall time of every attempt so far (the earlier ones up to their last checkpoint)."""
        return self.earlier_wall_s + (self.stopwatch.seconds if self.stopwatch else 0.0)

    def state_dict(self):
        return {
            "seconds": self.seconds,
            "samples": self.samples,
            "wall_s": self.wall_s,
            "attempts": self.attempts,
        }

    def load_state_dict(self, state):
        self.seconds, self.samples = float(state["seconds"]), int(state["samples"])
        self.earlier_wall_s = float(state.get("wall_s", 0.0))
        self.attempts = int(state.get("attempts", 1)) + 1

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.seconds += time.perf_counter() - self._start
        self.samples += int(batch["input_ids"].size(0))


class HeadLM(CompletionLM):
    """A sequence classifier trained on each prompt's label; the batch's prompts alone are read
    (adaptune.train.data's `prompt_ids`, left padded here)."""

    def completion_logits(self, batch):
        return head_logits(self.model, self.pad_id, batch["prompt_ids"])

    def completion_loss(self, logits, batch):
        return F.cross_entropy(logits.float(), batch["label_index"].to(logits.device))

    def label_scores(self, logits, batch):
        """Each row's log-softmax of the head's logits (float64); no vocabulary choice."""
        return torch.log_softmax(logits.detach().double(), dim=-1), None
