"""The analysis plan: which comparisons the report tests, on which metric, at which level, with
how many bootstrap resamples. It lives in the config (evaluation.analysis), fixed before any
result is seen; the Holm correction runs over exactly the family it names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Kinds of comparison, by config name: how the report names each.
KINDS = {
    "approach": "approach",  # each pair of approaches, same style and quantization
    "style": "prompt style",  # each pair of styles, same approach and quantization
    "quantization": "quantization",  # each pair of quantizations, same approach and style
    "best_vs_tfidf": "best fine-tuning vs TF-IDF",
    "best_vs_fewshot": "best fine-tuning vs few-shot",
}
# The grid factor each pairwise kind varies (the others held fixed).
FACTORS = {"approach": "method", "style": "style", "quantization": "quantization"}
METRICS = ("macro_f1", "accuracy")
# How training seeds enter a comparison of two fine-tuned systems trained on the same seeds:
# "paired" compares them seed by seed (the seed fixes the data order, so its effect is shared);
# "independent" gives each side its own seed term (the plan before the seed-paired analysis).
SEED_DESIGNS = ("paired", "independent")


@dataclass(frozen=True)
class AnalysisPlan:
    comparisons: tuple[str, ...] = tuple(KINDS)
    metric: str = "macro_f1"
    alpha: float = 0.05
    bootstrap_samples: int = 10_000
    seeds: str = "paired"
    margin: float = 0.03

    def __post_init__(self):
        unknown = [c for c in self.comparisons if c not in KINDS]
        if unknown:
            raise ValueError(f"evaluation.analysis.comparisons: {unknown} not among {list(KINDS)}")
        if self.metric not in METRICS:
            raise ValueError(
                f"evaluation.analysis.metric: {self.metric!r} is not one of {list(METRICS)}"
            )
        if not 0 < self.alpha < 1:
            raise ValueError(f"evaluation.analysis.alpha: {self.alpha} is not between 0 and 1")
        if not 0 < self.margin < 1:
            raise ValueError(f"evaluation.analysis.margin: {self.margin} is not between 0 and 1")
        if self.seeds not in SEED_DESIGNS:
            raise ValueError(
                f"evaluation.analysis.seeds: {self.seeds!r} is not one of {list(SEED_DESIGNS)}"
            )
        if self.bootstrap_samples < 1:
            raise ValueError(
                f"evaluation.analysis.bootstrap_samples: {self.bootstrap_samples} is below 1"
            )

    @classmethod
    def from_config(cls, block: Mapping | None) -> AnalysisPlan:
        """From the evaluation.analysis block (keys left out keep the defaults above)."""
        block = dict(block or {})
        unknown = set(block) - {
            "comparisons",
            "metric",
            "alpha",
            "bootstrap_samples",
            "seeds",
            "margin",
        }
        if unknown:
            raise ValueError(f"evaluation.analysis: unknown key(s) {sorted(unknown)}")
        if "comparisons" in block:
            block["comparisons"] = tuple(block["comparisons"])
        return cls(**block)
