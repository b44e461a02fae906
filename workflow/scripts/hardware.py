import _checkout  # noqa: F401  (first: adaptune from this checkout; see _checkout.py)
from adaptune.core.logs import log_to

log_to(snakemake.log[0])

from adaptune.core.offline import hub_offline

hub_offline()  # before bitsandbytes is imported (adaptune.core.offline)

import torch

from adaptune.core.io import write_json
from adaptune.hardware.precision import CANDIDATES
from adaptune.train.step_timing import measure_and_decide
from adaptune.train.run import TrainSettings

torch.set_num_threads(snakemake.threads)
settings = TrainSettings.from_params(snakemake.params.settings)
# An explicit precision is the only candidate: the rule then decides on compilation alone.
given = snakemake.config["training"]["precision"]
candidates = CANDIDATES if snakemake.params.decide_precision else (given,)
record = measure_and_decide(
    settings,
    snakemake.input.train,
    snakemake.input.model,
    threads=torch.get_num_threads(),
    candidates=candidates,
    compile_plan=snakemake.params.compile_plan,
)
write_json(snakemake.output[0], record)
