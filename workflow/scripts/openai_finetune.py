import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)

"""Fine-tune one OpenAI model (rule openai_finetune); the key comes from OPENAI_API_KEY."""

from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.openai.client import guard_secret  # noqa: E402

guard_secret()

from adaptune.openai.finetune import finetune  # noqa: E402
from adaptune.openai.settings import OpenAISettings  # noqa: E402

finetune(
    model=snakemake.wildcards.oai_model,
    train=snakemake.input.train,
    val=snakemake.input.val,
    output=snakemake.output.model,
    job_record=snakemake.params.job_record,
    labels=snakemake.params.labels,
    settings=OpenAISettings.from_config(snakemake.params.openai),
)
