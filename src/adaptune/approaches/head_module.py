"""The LightningModule of the classification head: CompletionLM's loop (logging, validation
scores and macro-F1, checkpoints of the trainable parameters, optimizer), with the head's logits
over the labels where CompletionLM has the completion's, and cross-entropy on the label."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from adaptune.approaches.head import head_logits
from adaptune.training_module import CompletionLM


class HeadLM(CompletionLM):
    """A sequence classifier trained on each prompt's label; the batch's prompts alone are read
    (adaptune.training_data's `prompt_ids`, left padded here)."""

    def completion_logits(self, batch):
        return head_logits(self.model, self.pad_id, batch["prompt_ids"])

    def completion_loss(self, logits, batch):
        return F.cross_entropy(logits.float(), batch["label_index"].to(logits.device))

    def label_scores(self, logits, batch):
        """Each row's log-softmax of the head's logits (float64); no vocabulary choice."""
        return torch.log_softmax(logits.detach().double(), dim=-1), None
