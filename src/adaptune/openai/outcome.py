"""The outputs of an OpenAI system that could not run (model shut down, fine-tuning refused, job
failed): the same files as a system that ran, so that the rest of the study completes and the
report lists it as "not run: <reason>".

metrics.json holds the system, the split, "status": "not_run", the reason, the labels and the
provenance, and no metric; predictions.csv holds the header only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from adaptune.core.names import PROB, score_column
from adaptune.evaluate.metrics import REQUIRED_PREDICTION_COLUMNS, write_evaluation

log = logging.getLogger(__name__)


def write_not_run(
    directory: str | Path,
    system: dict,
    split: str,
    labels: Sequence[str],
    reason: str,
    provenance: dict,
) -> dict:
    """Write the not-run predictions.csv and metrics.json of one split into `directory`."""
    import pandas as pd

    columns = [*REQUIRED_PREDICTION_COLUMNS, *[score_column(PROB, label) for label in labels]]
    metrics = {
        "system": system,
        "split": split,
        "status": "not_run",
        "reason": reason,
        "labels": list(labels),
        "provenance": provenance,
    }
    write_evaluation(directory, pd.DataFrame(columns=columns), metrics)
    log.warning("%s %s: not run: %s", system.get("name"), split, reason)
    return metrics
