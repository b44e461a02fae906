"""Fine-tune a quantized causal LM for classification, with PyTorch Lightning, by any approach
of the registry (adaptune.approaches: layernorm, lora_attention, lora_all, ...).

The base weights stay frozen (and int8/NF4 when quantized). The loss covers the completion
tokens only; see adaptune.lm.encoding for the batch layout and adaptune.train.module for the
LightningModule. `train` writes an output folder
whole or not at all:
    adapter/      a PEFT adapter folder (adaptune.approaches.adapters says what trains), plus
                  adaptune_adapter.json
    curves.csv    step, epoch, train_loss, val_loss, val_accuracy, val_macro_f1
    val_scores.csv  the final validation pass's label scores per prompt (evaluation reuses them)
    summary.json  parameter counts, steps, speed, memory, final metrics, provenance
`adaptune.approaches.adapters.load_trained` puts a saved adapter back on its base model.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from adaptune.approaches import get as get_approach
from adaptune.approaches.adapters import ADAPTER_FILE, make_trainable, save_adapter
from adaptune.core.config import schema_defaults
from adaptune.core.io import atomic_dir, write_csv, write_json
from adaptune.core.names import APPROACHES, BRANCHES_FILE, QUANTIZATIONS
from adaptune.core.provenance import Stopwatch, peak_gpu_memory_mb, peak_memory_mb, provenance
from adaptune.hardware.precision import PRECISIONS
from adaptune.lm.models import count_parameters, model_entry, model_fingerprint

OPTIMIZERS = ("adamw", "adamw8bit")
LR_SCHEDULES = ("linear", "constant", "wsd")
# "auto": one process on one device; "ddp": Lightning's DDP, one process per device, each started
# by re-running the script (so it works inside a Snakemake script job and any plain script).
STRATEGIES = ("auto", "ddp")
CURVE_COLUMNS = ["step", "epoch", "train_loss", "val_loss", "val_accuracy", "val_macro_f1"]
STEPS = "steps"  # the folder of a run's checkpoints, beside its logged metrics.csv
# The final validation pass's label scores, which the evaluation of the val split reuses.
VAL_SCORES = "val_scores.csv"
# Settings that say how a run is carried out, not what it trains: kept out of the run's
# fingerprint and of the rules' params, so that adding a time limit after a timeout, or changing
# how often checkpoints are written, neither deletes a run's checkpoints nor reruns its cell.
RUN_CONTROL_KEYS = (
    "max_time",
    "checkpoint_every_n_steps",
    "log_every_n_steps",
    "compile",
    "compile_cache",
)

# Lightning's Trainer knobs: at their schema defaults they stay out of a cell's params, so the
# studies trained before the schema gave them a default keep their fingerprints.
TRAINER_KNOBS = ("accumulate_grad_batches", "devices", "strategy")

log = logging.getLogger(__name__)

# Defaults come from the config schema: a direct call trains what the pipeline would.
_TRAINING = schema_defaults("training")
_APPROACH = _TRAINING["approaches"]["lora_all"]  # the keys every approach has share their defaults
_LORA = _APPROACH["lora"]


def without_default_knobs(params: Mapping) -> dict:
    """A cell's params without the Trainer knobs that are at their schema defaults."""
    return {k: v for k, v in params.items() if not (k in TRAINER_KNOBS and v == _TRAINING[k])}


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class LoraSettings:
    r: int = _LORA["r"]
    alpha: float = _LORA["alpha"]
    dropout: float = _LORA["dropout"]
    embedding: bool = _LORA["embedding"]  # also adapt the input embedding (lora_all only)
    # Unset in the schema means "no"; the reference study set all three.
    lm_head: bool | None = None  # also adapt the LM head (lora_all only)
    norms: bool | None = None  # also train the normalization layers
    biases: bool | None = None  # also train the Linear layers' biases

    def __post_init__(self):
        _check(isinstance(self.r, int) and self.r >= 1, "lora.r", self.r, "an integer >= 1")
        _check(_number(self.alpha) and self.alpha > 0, "lora.alpha", self.alpha, "a number > 0")
        _check(
            _number(self.dropout) and 0 <= self.dropout < 1,
            "lora.dropout",
            self.dropout,
            "in [0, 1)",
        )
        for key in ("embedding", "lm_head", "norms", "biases"):
            value = getattr(self, key)
            _check(value is None or isinstance(value, bool), f"lora.{key}", value, "true or false")


@dataclass(frozen=True)
class TrainSettings:
    """One training run: the rule's params (training common keys, the approach's section,
    quantization, labels, style and its template, the model entry)."""

    approach: str
    learning_rate: float
    epochs: int
    batch_size: int = _APPROACH["batch_size"]
    weight_decay: float = _APPROACH["weight_decay"]
    warmup_ratio: float = _APPROACH["warmup_ratio"]
    # linear: warm-up then linear decay to zero; constant: warm-up then the peak rate throughout
    # (the reference study: constant, no warm-up).
    lr_schedule: str = _TRAINING["lr_schedule"]
    # wsd: warm-up, the peak rate, then a linear decay to zero over this fraction of an epoch's
    # steps at the run's end (warmup_ratio is then a fraction of an epoch too; see schedule.py).
    decay_ratio: float = 0.1
    # Under wsd: the shorter epoch counts whose runs are branched off this one and scored on val
    # (adaptune.train.schedule; the sweep's), written to branches.csv.
    branch_epochs: tuple[int, ...] = ()
    lora: LoraSettings | None = None
    seed: int = _TRAINING["seeds"][0]
    precision: str = _TRAINING[
        "precision"
    ]  # resolved by adaptune.hardware.precision.resolve when training starts
    optimizer: str = _TRAINING["optimizer"]
    max_length: int = _TRAINING["max_length"]
    gradient_checkpointing: bool = _TRAINING["gradient_checkpointing"]
    quantization: str = _TRAINING["quantizations"][0]
    style: str = _TRAINING["styles"][0]
    labels: tuple[str, ...] = tuple(schema_defaults("labels"))
    template: str | None = None
    model: dict | None = None  # the config `models` entry (with "name") the rule was given
    log_every_n_steps: int = 5
    # Score the validation split once before training too: the curves then start at the
    # untrained model (step 0).
    validate_first: bool = True
    val_checks_per_epoch: int = _TRAINING[
        "val_checks_per_epoch"
    ]  # scores of the validation split per epoch
    max_steps: int | None = None  # stop early (tests, benchmarks); None trains all epochs
    checkpoint_every_n_steps: int = _TRAINING["checkpoint_every_n_steps"]
    truncation_side: str | None = None  # which end of a long prompt is cut; unset keeps the end
    biases: bool | None = None  # layernorm: also train the Linear layers' biases
    # Lightning's Trainer knobs: micro-batches per optimizer step, gradient-norm clipping, and a
    # wall-clock limit ("DD:HH:MM:SS"; training stops there and the adapter so far is saved).
    accumulate_grad_batches: int = _TRAINING["accumulate_grad_batches"]
    gradient_clip_val: float | None = None
    max_time: str | None = None
    # Devices for this one run and how they share it (see STRATEGIES); the batch per optimizer
    # step is batch_size x accumulate_grad_batches x devices.
    devices: int = _TRAINING["devices"]
    strategy: str = _TRAINING["strategy"]
    # torch.compile the model (true, false, or auto: the hardware rule's timed decision) with
    # inductor's caches in compile_cache, shared by a study's jobs (adaptune.hardware.compilation).
    compile: bool | str = _TRAINING["compile"]
    compile_cache: str = "resources/compile-cache"

    def __post_init__(self):
        _check(self.approach in APPROACHES, "approach", self.approach, f"one of {list(APPROACHES)}")
        _check(
            _number(self.learning_rate) and self.learning_rate > 0,
            "learning_rate",
            self.learning_rate,
            "a number > 0",
        )
        for key in (
            "epochs",
            "batch_size",
            "log_every_n_steps",
            "val_checks_per_epoch",
            "checkpoint_every_n_steps",
            "accumulate_grad_batches",
            "devices",
        ):
            value = getattr(self, key)
            _check(isinstance(value, int) and value >= 1, key, value, "an integer >= 1")
        _check(
            _number(self.weight_decay) and self.weight_decay >= 0,
            "weight_decay",
            self.weight_decay,
            "a number >= 0",
        )
        _check(
            _number(self.warmup_ratio) and 0 <= self.warmup_ratio <= 1,
            "warmup_ratio",
            self.warmup_ratio,
            "in [0, 1]",
        )
        _check(isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed, "an integer >= 0")
        _check(
            self.precision in PRECISIONS, "precision", self.precision, f"one of {list(PRECISIONS)}"
        )
        object.__setattr__(self, "branch_epochs", tuple(self.branch_epochs or ()))  # frozen
        _check(
            all(isinstance(e, int) and 0 < e < self.epochs for e in self.branch_epochs),
            "branch_epochs",
            list(self.branch_epochs),
            f"epoch counts below epochs ({self.epochs})",
        )
        if self.branch_epochs:
            _check(
                self.lr_schedule == "wsd",
                "lr_schedule",
                self.lr_schedule,
                "wsd where branch_epochs is set (its shorter runs are the long run's prefix)",
            )
            _check(
                self.accumulate_grad_batches == 1 and self.devices == 1,
                "branch_epochs",
                list(self.branch_epochs),
                "no branches with accumulate_grad_batches or devices > 1",
            )
        _check(
            self.compile in (True, False, "auto"), "compile", self.compile, "true, false or auto"
        )
        _check(
            self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, f"one of {list(OPTIMIZERS)}"
        )
        _check(
            _number(self.decay_ratio) and 0 < self.decay_ratio <= 1,
            "decay_ratio",
            self.decay_ratio,
            "in (0, 1]",
        )
        _check(
            self.lr_schedule in LR_SCHEDULES,
            "lr_schedule",
            self.lr_schedule,
            f"one of {list(LR_SCHEDULES)}",
        )
        _check(
            isinstance(self.max_length, int) and self.max_length >= 8,
            "max_length",
            self.max_length,
            "an integer >= 8",
        )
        _check(
            self.truncation_side in (None, "left", "right"),
            "truncation_side",
            self.truncation_side,
            "left or right",
        )
        _check(
            self.biases is None or isinstance(self.biases, bool),
            "biases",
            self.biases,
            "true or false",
        )
        _check(
            self.quantization in QUANTIZATIONS,
            "quantization",
            self.quantization,
            f"one of {list(QUANTIZATIONS)}",
        )
        _check(
            len(self.labels) >= 2 and len(set(self.labels)) == len(self.labels),
            "labels",
            self.labels,
            "two or more distinct names",
        )
        _check(
            self.gradient_clip_val is None
            or (_number(self.gradient_clip_val) and self.gradient_clip_val > 0),
            "gradient_clip_val",
            self.gradient_clip_val,
            "unset or a number > 0",
        )
        _check(
            self.max_time is None or _is_duration(self.max_time),
            "max_time",
            self.max_time,
            'unset or "DD:HH:MM:SS"',
        )
        _check(self.strategy in STRATEGIES, "strategy", self.strategy, f"one of {list(STRATEGIES)}")
        _check(
            self.devices == 1 or self.strategy == "ddp",
            "devices",
            self.devices,
            '1 unless strategy is "ddp"',
        )
        # bitsandbytes' int8/NF4 weights cannot be replicated and moved per process (litgpt refuses
        # quantization with several devices for the same reason).
        _check(
            self.strategy != "ddp" or self.quantization == "none",
            "strategy",
            self.strategy,
            f'"auto" with quantization {self.quantization!r}: '
            "a bitsandbytes-quantized base cannot be "
            'trained with DDP; use quantization "none" or one device',
        )
        _check(
            self.max_steps is None or (isinstance(self.max_steps, int) and self.max_steps >= 1),
            "max_steps",
            self.max_steps,
            "None or an integer >= 1",
        )
        approach = get_approach(self.approach)
        if approach.uses_lora:
            _check(isinstance(self.lora, LoraSettings), "lora", self.lora, "LoRA settings")
        else:
            _check(self.lora is None, "lora", self.lora, f"absent for {self.approach}")
        if approach.check is not None:
            approach.check(self)

    @classmethod
    def from_params(cls, params: dict) -> TrainSettings:
        """Build from a rule's params dict; unknown keys are an error, `enabled` is ignored."""
        params = {k: v for k, v in dict(params).items() if k != "enabled"}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(
                f"training settings: unknown key(s) {unknown}; expected some of {sorted(known)}"
            )
        if params.get("approach") in APPROACHES and not get_approach(params["approach"]).uses_lora:
            params.pop("lora", None)
        elif "approach" in params:
            lora = params.get("lora") or {}
            lora_known = {f.name for f in fields(LoraSettings)}
            if set(lora) - lora_known:
                raise ValueError(
                    f"training settings: lora: unknown key(s) {sorted(set(lora) - lora_known)}"
                )
            params["lora"] = LoraSettings(**lora)
        if "labels" in params:
            params["labels"] = tuple(params["labels"])
        if "model" in params and params["model"] is not None:
            params["model"] = dict(params["model"])
        try:
            return cls(**params)
        except TypeError as error:  # a required key is missing
            raise ValueError(f"training settings: {error}") from None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_duration(value) -> bool:
    parts = value.split(":") if isinstance(value, str) else []
    return len(parts) == 4 and all(p.isdigit() for p in parts)


def _check(ok: bool, key: str, value, expected: str) -> None:
    if not ok:
        raise ValueError(f"training settings: {key}: got {value!r}, expected {expected}")


# ---------------------------------------------------------------------------- train


def train(
    settings: TrainSettings,
    train_prompts: str | os.PathLike,
    val_prompts: str | os.PathLike,
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    precision_file: str | os.PathLike | None = None,
) -> dict:
    """Fine-tune the model in `model_dir` on the prompts; write adapter/, curves.csv and
    summary.json into `out_dir` (all or nothing). Returns the summary. `precision_file`: the
    study's precision decision (results/hardware/precision.json), read when precision is auto."""
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
    from pytorch_lightning.loggers import CSVLogger
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from adaptune.approaches.adapters import load_base
    from adaptune.data.prompts import read_prompts
    from adaptune.hardware import compilation
    from adaptune.hardware.precision import frozen_dtypes, lightning_precision, prepare_for_training
    from adaptune.train.data import PromptDataModule
    from adaptune.train.module import TrainTimer

    stopwatch = Stopwatch()
    # The precision actually used goes into the summary, the adapter record and the fingerprint.
    settings = resolved(settings, precision_file)
    entry = model_entry(model_dir)
    for path in (train_prompts, val_prompts):  # fail on bad input before the slow model load
        read_prompts(path, settings.labels)
    if settings.model is not None and settings.model.get("name") != entry.get("name"):
        raise ValueError(
            f"{model_dir}: holds model {entry.get('name')!r} but the settings are for "
            f"{settings.model.get('name')!r}"
        )
    pl.seed_everything(settings.seed, workers=True, verbose=False)
    # Under DDP every process runs this function; the first one writes the outputs.
    rank = launched_rank()
    # Under DDP each process's copy goes to its own device with Lightning, from the CPU.
    model, tokenizer = load_base(
        settings.approach,
        model_dir,
        settings.quantization,
        settings.labels,
        device="cpu" if settings.devices > 1 else None,
    )
    base_parameters = count_parameters(model)
    model = prepare_for_training(make_trainable(model, settings, entry), settings.precision)
    model.train()  # from_pretrained returns eval mode; dropout on for training
    # Compiled where decided, on an unquantized base: the timing ran on one (bitsandbytes' layers
    # are not something inductor is known to trace).
    compiled = (
        compilation.resolve(settings.compile, precision_file) and settings.quantization == "none"
    )
    if compiled:
        compilation.use_cache(settings.compile_cache)
        compilation.compile_model(model)
        # Counted from here: a process that compiled before (a notebook, a test) counts this
        # run's graphs alone.
        cache_counts_before = compilation.cache_counters()
    trainable = count_parameters(model, trainable_only=True)
    log.info(
        "%s on %s (%s): %d trainable parameters of %d",
        settings.approach,
        entry.get("name"),
        settings.quantization,
        trainable,
        count_parameters(model),
    )
    data = PromptDataModule(
        tokenizer,
        train_prompts,
        val_prompts,
        settings.labels,
        settings.batch_size,
        settings.max_length,
        settings.seed,
        truncation_side=settings.truncation_side,
        samples_per_step=effective_batch_size(settings),
        pad_to_buckets=compiled,
    )
    trainer_module = training_module(settings.approach)  # the approach's LightningModule
    module = trainer_module(model, settings, data.label_ids, data.collate.pad_token_id)
    timer = TrainTimer(stopwatch)
    branches = None
    if settings.branch_epochs:
        from adaptune.train.schedule import DecayBranches

        per_epoch = math.ceil(len(data.train_examples) / settings.batch_size)
        branches = DecayBranches(
            settings.branch_epochs, per_epoch, settings.warmup_ratio, settings.decay_ratio
        )

    out_dir = Path(out_dir)
    if rank == 0:
        clear_stale_scratch(out_dir)
    checkpoints = (
        out_dir / "checkpoints" / run_fingerprint(settings, model_dir, train_prompts, val_prompts)
    )
    resume_from = latest_checkpoint(out_dir / "checkpoints", checkpoints, keep_others=rank > 0)
    # The checkpoints live inside out_dir, which the finished outputs replace whole: they go then.
    with atomic_dir(out_dir, replaceable=_is_cell_output) if rank == 0 else _discarded_dir() as tmp:
        logger = CSVLogger(checkpoints, name="", version="", flush_logs_every_n_steps=1)
        if resume_from is not None:
            log.info("resuming from %s", resume_from)
            if rank == 0:
                _keep_rows_before(Path(logger.log_dir), _checkpoint_step(resume_from))
        # The checkpoints in a folder of their own: the logger's files beside them would make a
        # fresh run's folder look used ("exists and is not empty"). The newest two: the one
        # before stands in for a newest one cut short (latest_checkpoint).
        saver = ModelCheckpoint(
            dirpath=checkpoints / STEPS,
            filename="step{step}",
            every_n_train_steps=settings.checkpoint_every_n_steps,
            save_top_k=2,
            monitor="step",
            mode="max",
            save_weights_only=False,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        )
        trainer = pl.Trainer(
            max_epochs=settings.epochs,
            max_steps=settings.max_steps or -1,
            max_time=settings.max_time,
            accumulate_grad_batches=settings.accumulate_grad_batches,
            gradient_clip_val=settings.gradient_clip_val,
            accelerator="auto",
            devices=settings.devices,
            strategy=settings.strategy,
            plugins=launcher_plugins(settings),
            # The training sampler shards each optimizer step's samples over the processes itself
            # (adaptune.train.data), so that DDP sees the samples one process would.
            use_distributed_sampler=False,
            precision=lightning_precision(settings.precision),
            # Some CUDA kernels (bitsandbytes') have no deterministic version: warn there.
            deterministic=True if not torch.cuda.is_available() else "warn",
            logger=logger,
            # tqdm rather than rich: it writes as it goes, also into a log file.
            callbacks=[
                timer,
                saver,
                TQDMProgressBar(refresh_rate=settings.log_every_n_steps),
                *([branches] if branches else []),
            ],
            log_every_n_steps=settings.log_every_n_steps,
            val_check_interval=1.0 / settings.val_checks_per_epoch,
            enable_checkpointing=True,
            enable_model_summary=False,  # it prints to stdout; the counts are logged below
            num_sanity_val_steps=0,
            default_root_dir=checkpoints,
        )
        try:
            if settings.validate_first and resume_from is None:
                trainer.validate(module, datamodule=data, verbose=False)
                module.train()
            trainer.fit(module, datamodule=data, ckpt_path=resume_from)
            if resume_from is not None:
                refuse_a_short_resume(trainer, settings, resume_from, remove=rank == 0)
            if module.val_step != trainer.global_step:
                # The curves end at the trained adapter; evaluation reuses this pass (val split).
                trainer.validate(module, datamodule=data, verbose=False)
        except SIGTERMException as stop:
            # Lightning ends its loops with a SystemExit of status 0: the job would pass for
            # finished, with no outputs (a cluster's time limit or preemption sends SIGTERM).
            raise Terminated(
                f"{out_dir}: stopped by SIGTERM at step {trainer.global_step}; its checkpoints "
                f"stay in {checkpoints / STEPS}, and a rerun resumes from the newest"
            ) from stop
        if not trainer.is_global_zero:
            return None
        curves = read_curves(Path(logger.log_dir))
        save_adapter(module.model, settings, model_dir, tmp / "adapter", data.completions)
        write_csv(tmp / "curves.csv", curves)
        write_csv(tmp / VAL_SCORES, final_val_scores(module, data, settings.labels))
        if branches is not None:
            import pandas as pd

            from adaptune.train.schedule import RESULT_COLUMNS

            results = pd.DataFrame(branches.results, columns=list(RESULT_COLUMNS))
            write_csv(tmp / BRANCHES_FILE, results)
        summary = _summary(
            settings,
            entry,
            trainer,
            module,
            timer,
            curves,
            trainable,
            count_parameters(module.model),
            base_parameters,
            stopwatch,
        )
        summary["resumed_from_step"] = (
            None if resume_from is None else _checkpoint_step(resume_from)
        )
        # A resumed run's wall time counts its earlier attempts (up to their last checkpoint).
        summary["wall_time_s"], summary["attempts"] = round(timer.wall_s, 2), timer.attempts
        summary["stopped_by_time_limit"] = stopped_by_time_limit(trainer, settings)
        summary["frozen_weight_dtypes"] = frozen_dtypes(module.model)
        summary["final_val_examples_per_second"] = round(
            len(data.val_ids) / max(module.val_seconds, 1e-9), 3
        )
        summary["torch_threads"] = torch.get_num_threads()
        summary["compiled"] = compiled
        if compiled:
            summary["compile_cache"] = compilation.cache_counters(since=cache_counts_before)
        write_json(tmp / "summary.json", summary)
    return summary


def resolved(settings: TrainSettings, precision_file=None) -> TrainSettings:
    """The settings with the precision a run uses (auto: the decision file's choice), the only
    part of the decision that reaches the run: its fingerprint, summary and adapter record."""
    from adaptune.hardware.precision import resolve

    return replace(settings, precision=resolve(settings.precision, precision_file))


def final_val_scores(module, data, labels):
    """The last validation pass (at the final step) as a frame: id, each label's log-likelihood
    (loglik_<label>, as the scorer gives it: CompletionLM.label_scores), and, where every label
    is one token, vocab_choice (the label whose token is the vocabulary's argmax, else "").
    Where the pass did not score every prompt the frame is empty and evaluation scores the
    split itself."""
    import pandas as pd
    import torch

    frame = pd.DataFrame({"id": [data.val_ids[i] for i in data.val_order]})
    scored = sum(len(s) for s in module.val_scores)
    if scored != len(frame):
        return frame.iloc[:0]
    scores = torch.cat(module.val_scores).double().numpy()
    from adaptune.core.names import LOGLIK, score_column

    for j, label in enumerate(labels):
        frame[score_column(LOGLIK, label)] = scores[:, j]
    if module.val_vocab:
        tokens = module.label_tokens.tolist()
        top = torch.cat(module.val_vocab).tolist()
        frame["vocab_choice"] = [labels[tokens.index(t)] if t in tokens else "" for t in top]
    return frame


def effective_batch_size(settings: TrainSettings) -> int:
    """Examples per optimizer step: the batch, times the micro-batches accumulated, times the
    processes of DDP."""
    return settings.batch_size * settings.accumulate_grad_batches * settings.devices


def launched_rank() -> int:
    """This process's rank in a DDP run, known before the Trainer exists: from Lightning's
    launcher (LOCAL_RANK, set in the processes it starts) or SLURM's (SLURM_PROCID, one task per
    device); 0 in the process that runs the script first, or without DDP."""
    for variable in ("SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(variable, "").isdigit() and int(os.environ[variable]) > 0:
            return int(os.environ[variable])
    return 0


def launcher_plugins(settings: TrainSettings) -> list | None:
    """Under DDP, Lightning's own launcher, which starts a process per device by running the
    script again, also inside SLURM: Snakemake's SLURM job step runs the job as one task
    (`srun -n1`), where Lightning's SLURM environment would train with world size 1 or refuse."""
    if settings.strategy != "ddp":
        return None
    from pytorch_lightning.plugins.environments import LightningEnvironment

    return [LightningEnvironment()]


def _is_cell_output(folder: Path) -> bool:
    """A training cell's own output folder: a finished adapter, or the checkpoints of a run
    that was interrupted; whatever else a folder holds is not replaced."""
    return (folder / ADAPTER_FILE).is_file() or (folder / "checkpoints").is_dir()


@contextmanager
def _discarded_dir():
    """The output folder of a DDP process other than the first: nothing it writes is kept."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="adaptune-rank-") as scratch:
        yield Path(scratch)


def clear_stale_scratch(out_dir: Path) -> None:
    """Remove the hidden scratch folders an interrupted atomic write left beside `out_dir`."""
    import shutil

    for stale in out_dir.parent.glob(f".{out_dir.name}.*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def run_fingerprint(settings: TrainSettings, model_dir, train_prompts, val_prompts) -> str:
    """A digest of what a run's result depends on; a checkpoint is resumed only under the same
    one."""
    import hashlib

    from adaptune.core.io import sha256_of

    kept = {k: v for k, v in asdict(settings).items() if k not in RUN_CONTROL_KEYS}
    parts = {
        "settings": kept,
        "model": model_fingerprint(model_dir),
        "train": sha256_of(train_prompts),
        "val": sha256_of(val_prompts),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def latest_checkpoint(root: Path, run_dir: Path, keep_others: bool = False) -> str | None:
    """The newest checkpoint of this run that loads; other runs' checkpoint folders are deleted
    (unless keep_others: the other processes of a DDP run leave that to the first). A newest
    file cut short (a kill during Lightning's copy from another file system) is skipped, with a
    warning, for the one before it."""
    import shutil

    if root.is_dir() and not keep_others:
        for other in root.iterdir():
            if other != run_dir:
                shutil.rmtree(other, ignore_errors=True) if other.is_dir() else other.unlink()
    found = (
        sorted((run_dir / STEPS).glob("step*.ckpt"), key=_checkpoint_step)
        if run_dir.is_dir()
        else []
    )
    for path in reversed(found):
        if checkpoint_loads(path):
            return str(path)
        log.warning("%s: not a readable checkpoint (cut short?); trying the one before it", path)
    return None


class ResumeError(RuntimeError):
    """A run resumed from a checkpoint stopped before its last step."""


class Terminated(RuntimeError):
    """A run stopped by SIGTERM before it finished."""


def refuse_a_short_resume(trainer, settings: TrainSettings, checkpoint: str, remove: bool) -> None:
    """Fail, and remove the checkpoint, where resuming from it ended training before the run's
    last step with no time limit reached: Lightning restored it as further on than it was (seen
    once on a checkpoint written at an epoch's end), and the run would be recorded as whole. The
    rerun resumes from the checkpoint before it."""
    planned = trainer.estimated_stepping_batches
    if trainer.global_step >= planned or stopped_by_time_limit(trainer, settings):
        return
    if remove:
        Path(checkpoint).unlink(missing_ok=True)
    raise ResumeError(
        f"{checkpoint}: resuming from it ended training at step {trainer.global_step} of "
        f"{planned}; the checkpoint is removed, so a rerun resumes from the one before it"
    )


def checkpoint_loads(path) -> bool:
    """Whether torch can read the checkpoint whole (its archive's records and their CRCs)."""
    import pickle
    import zipfile

    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile):
        return False
    return True


def stopped_by_time_limit(trainer, settings: TrainSettings) -> bool:
    """Whether Lightning's timer (max_time) ended training before its last step."""
    from pytorch_lightning.callbacks import Timer

    clocks = [c for c in trainer.callbacks if isinstance(c, Timer)]
    if settings.max_time is None or not clocks:
        return False
    ran_out = clocks[0].time_remaining("train") <= 0
    return ran_out and trainer.global_step < trainer.estimated_stepping_batches


def _checkpoint_step(path) -> int:
    return int(Path(path).stem.removeprefix("step"))


# The rows logged before the last resume. Lightning's CSV logger deletes metrics.csv when it
# starts, so a resumed run keeps its earlier rows (the sweep's epoch scores among them) here.
EARLIER_METRICS = "metrics_before_resume.csv"


def _keep_rows_before(log_dir: Path, step: int) -> None:
    """Keep the rows logged before the checkpoint's step, from every earlier attempt, in
    EARLIER_METRICS; the later ones are logged again. The file is replaced whole: an
    interrupted rewrite leaves the old one."""
    rows = _logged_rows(log_dir)
    if len(rows):
        write_csv(log_dir / EARLIER_METRICS, rows[rows["step"] < step])


def _logged_rows(log_dir: Path):
    """Every row the run logged: those kept from before the last resume, then the latest
    attempt's (which win where both have a step)."""
    import pandas as pd

    earlier, latest = (
        pd.read_csv(path) if path.is_file() and path.stat().st_size else pd.DataFrame({"step": []})
        for path in (log_dir / EARLIER_METRICS, log_dir / "metrics.csv")
    )
    if len(latest):
        earlier = earlier[earlier["step"] < latest["step"].min()]
    return pd.concat(
        [frame for frame in (earlier, latest) if len(frame)] or [latest], ignore_index=True
    )


def read_curves(log_dir: Path):
    """The run's logged rows, the ones before any resume included, with the contract's columns
    (empty where not logged)."""
    import pandas as pd

    frame = _logged_rows(log_dir)
    for column in CURVE_COLUMNS:
        if column not in frame:
            frame[column] = pd.NA
    return frame[CURVE_COLUMNS]


def _last(curves, column):
    values = curves[column].dropna()
    return None if values.empty else round(float(values.iloc[-1]), 6)


def _summary(
    settings, entry, trainer, module, timer, curves, trainable, total, base, stopwatch
) -> dict:
    config = {k: v for k, v in asdict(settings).items() if k not in ("log_every_n_steps",)}
    final_train = module.epoch_train_losses[-1] if module.epoch_train_losses else None
    return {
        "model": entry.get("name"),
        "approach": settings.approach,
        "style": settings.style,
        "quantization": settings.quantization,
        "precision": settings.precision,  # resolved: what training ran under
        "trainable_parameters": trainable,
        # Every parameter of the trained model (base + adapter), each counted once, by element
        # (int8 weights one per element, NF4 weights by their unpacked shape).
        "total_parameters": total,
        # The base model as loaded, before any adapter.
        "base_parameters": base,
        "trainable_fraction": round(trainable / total, 8) if total else None,
        "epochs": int(trainer.current_epoch),
        "steps": int(trainer.global_step),
        # Examples per optimizer step (batch_size x accumulate_grad_batches x devices).
        "effective_batch_size": effective_batch_size(settings),
        "devices": int(trainer.world_size),
        # Every process sees its equal share: the first one's count times the processes.
        "train_samples": timer.samples * int(trainer.world_size),
        "wall_time_s": round(stopwatch.seconds, 2),
        "train_time_s": round(timer.seconds, 2),
        "train_samples_per_second": round(
            timer.samples * int(trainer.world_size) / timer.seconds, 3
        )
        if timer.seconds
        else None,
        "peak_memory_mb": peak_memory_mb(),
        "peak_gpu_memory_mb": peak_gpu_memory_mb(),
        # Mean training loss over the last epoch's steps.
        "final_train_loss": None if final_train is None else round(final_train, 6),
        "final_val_loss": _last(curves, "val_loss"),
        "final_val_accuracy": _last(curves, "val_accuracy"),
        "final_val_macro_f1": _last(curves, "val_macro_f1"),
        "provenance": provenance(config, settings.seed, stopwatch),
    }


def training_module(name: str):
    """The LightningModule class that trains approach `name`: (model, settings, label ids,
    pad id)."""
    if get_approach(name).scorer == "head":
        from adaptune.train.module import HeadLM

        return HeadLM
    from adaptune.train.module import CompletionLM

    return CompletionLM
