import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)
import logging

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.data.splits import SplitSettings, draw_train_split
from adaptune.core.io import write_csv

settings = SplitSettings.from_config(dict(snakemake.params.splits))
reference = {
    part: snakemake.input[part] for part in ("train", "val") if part in snakemake.input.keys()
}
train = draw_train_split(
    snakemake.input.raw,
    list(snakemake.params.labels),
    settings,
    [snakemake.input.val, snakemake.input.test],
    int(snakemake.wildcards.split_seed),
    reference,
    exclude_texts=list(snakemake.params.exclude_texts),
)
write_csv(snakemake.output[0], train[["id", "text", "label"]])
logging.info(
    "train split %s: %d rows, %s",
    snakemake.wildcards.split_seed,
    len(train),
    train["label"].value_counts().to_dict(),
)
