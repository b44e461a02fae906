import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)
import logging

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.data.splits import SplitSettings, make_splits, write_splits
from adaptune.core.names import SPLITS

settings = SplitSettings.from_config(dict(snakemake.params.splits))
reference = {
    part: snakemake.input[part] for part in ("train", "val") if part in snakemake.input.keys()
}
splits = make_splits(
    snakemake.input.raw,
    list(snakemake.params.labels),
    settings,
    reference,
    exclude_texts=list(snakemake.params.exclude_texts),
)
write_splits(splits, {name: snakemake.output[name] for name in SPLITS})
for name, frame in splits.items():
    logging.info("%s: %d rows, %s", name, len(frame), frame["label"].value_counts().to_dict())
