"""The `adaptune` command (also `python -m adaptune`).

    adaptune predict \\
        --adapter results/train/smollm2-135m/lora_all/instruction/none/seed42/adapter \\
        [--model-dir resources/models/smollm2-135m] [--quantization 8bit|4bit|none] \\
        [--output out.csv] [--format tsv|csv|jsonl] [--text-column tweet] [--device cpu|cuda[:N]] \\
        (TEXT... | --file F | --file - | -)

prints, for each text, the predicted label and the probability of every label (a softmax over
the labels' log-likelihoods), tab-separated with a header; or writes them to --output as CSV;
--format jsonl gives one JSON object per input ({"text", "label", "probabilities"}) instead.
--file reads a CSV's `text` column (or --text-column's; by its .csv suffix) or one text per line;
`-` (as TEXT or as --file) reads one text per line from stdin. The base model is the one recorded
with the adapter unless --model-dir names it; --adapter may also be a folder written by
`adaptune export`. Runs offline on the CPU (or the GPU when there is one, or --device's), with
the template, labels and max_length recorded with the adapter.

    adaptune export --adapter ADAPTER --output DIR [--dtype float32|bfloat16] [--model-dir M]

merges the adapter into its (unquantized) base and writes a plain transformers model folder
with the tokenizer and the adapter record: AutoModelForCausalLM.from_pretrained(DIR) loads it.

Exit status: 0 done, 2 a usage error (the command line is wrong), 1 a failure while running.
An unusable input (input file, adapter, model folder) is reported in one line, with its
traceback under --debug (-v); any other error is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from adaptune.core.names import PROB, QUANTIZATIONS, score_column
from adaptune.core.offline import hub_offline

PROG = "adaptune"
USAGE_ERROR, FAILURE = 2, 1
# Inputs at least this long get a progress bar on stderr (when it is a terminal).
PROGRESS_MIN_TEXTS = 64

EXAMPLES = (
    "examples:\n"
    "  adaptune predict --adapter "
    "results/train/smollm2-135m/lora_all/instruction/none/seed42/adapter \\\n"
    '      "I love sunny days" "you are a clown"\n'
    "  adaptune predict --adapter ADAPTER --file tweets.csv --output labelled.csv\n"
    "  cat tweets.txt | adaptune predict --adapter ADAPTER --file -\n"
    "  adaptune predict --adapter ADAPTER --model-dir resources/models/smollm2-135m "
    "--quantization none TEXT\n"
    "  adaptune predict --adapter ADAPTER --file data/labeled_data.csv --text-column tweet "
    "--format jsonl --device cuda:1\n"
    "  adaptune export --adapter ADAPTER --output exported/lora_all --dtype bfloat16\n"
)


class UsageError(ValueError):
    """The command line is wrong (exit 2); reported without a traceback."""


class InputError(ValueError):
    """An input file or the adapter cannot be used (exit 1); reported without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    from adaptune import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Classify texts with a fine-tuned adapter.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict = commands.add_parser(
        "predict",
        help="classify texts with a trained adapter",
        description="Print the predicted label and per-label probabilities of each text.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument(
        "texts", nargs="*", metavar="TEXT", help="texts to classify; '-' reads stdin"
    )
    predict.add_argument(
        "--model-dir",
        type=Path,
        help="the prepared base model (default: the one recorded with the adapter)",
    )
    predict.add_argument(
        "--adapter",
        required=True,
        type=Path,
        help=(
            "an adapter folder, "
            "e.g. results/train/<model>/<approach>/<style>/<quantization>/seed<seed>/adapter"
        ),
    )
    predict.add_argument(
        "--file", help="a CSV with a text column, or one text per line; - reads stdin"
    )
    predict.add_argument(
        "--quantization",
        choices=QUANTIZATIONS,
        help="precision of the base weights (default: the one the adapter was trained with)",
    )
    predict.add_argument(
        "--output",
        type=Path,
        help="write the predictions here (in --format, default csv) instead of printing",
    )
    predict.add_argument(
        "--batch-size", type=int, default=8, help="texts per forward pass (default 8)"
    )
    predict.add_argument(
        "--threads", type=int, help="CPU threads for torch (default: torch's choice)"
    )
    predict.add_argument(
        "--debug", "-v", action="store_true", help="show the traceback of an input error too"
    )
    predict.add_argument(
        "--text-column", default="text", help="the CSV column holding the texts (default text)"
    )
    predict.add_argument(
        "--format",
        choices=["tsv", "csv", "jsonl"],
        help="tsv (default on the terminal), csv (default for --output) or jsonl: one JSON "
        "object per input with its label and probabilities",
    )
    predict.add_argument(
        "--device",
        type=device_name,
        help="cpu, cuda or cuda:N (default: the first GPU when there is one, else the CPU)",
    )
    export = commands.add_parser(
        "export",
        help="merge an adapter into its base and save a plain transformers model",
        description="Merge a trained adapter into its unquantized base model and save it, with its "
        "tokenizer and adapter record, as a folder that transformers loads alone.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--adapter", required=True, type=Path, help="the adapter folder to merge")
    export.add_argument(
        "--output",
        required=True,
        type=Path,
        help="a new model folder to write (an earlier export there is replaced whole; "
        "any other existing folder is refused)",
    )
    export.add_argument(
        "--dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="precision of the saved weights (default float32)",
    )
    export.add_argument(
        "--model-dir",
        type=Path,
        help="the prepared base model (default: the one recorded with the adapter)",
    )
    export.add_argument(
        "--debug", "-v", action="store_true", help="show the traceback of an input error too"
    )
    from adaptune.report import progress, publish

    publish.add_commands(commands)  # publish, readme, reanalyse, docs: numbers from its outputs
    progress.add_commands(commands)  # a long study's finished jobs carried between machines
    return parser


def device_name(value: str) -> str:
    """cpu, cuda or cuda:N, as torch spells them."""
    import re

    if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        raise argparse.ArgumentTypeError(f"{value!r}: expected cpu, cuda or cuda:N")
    return value


def read_texts(args) -> list[str]:
    """The texts to classify, from exactly one source; InputError when there are none."""
    sources = sum([bool(args.texts), args.file is not None])
    if sources == 0:
        raise UsageError("no input: give TEXT arguments, --file F, or - to read stdin")
    if sources > 1:
        raise UsageError("give either TEXT arguments (or -) or --file, not both")
    if args.texts == ["-"] or args.file == "-":
        texts = [t for t in _decoded_stdin().splitlines() if t.strip()]
        if not texts:
            raise InputError("stdin: no texts (expected one text per line)")
        return texts
    if args.file is not None:
        return _read_file(Path(args.file), args.text_column)
    if "-" in args.texts:
        raise UsageError("'-' (stdin) cannot be mixed with TEXT arguments")
    for position, text in enumerate(args.texts, start=1):
        if not text.strip():
            raise UsageError(f"TEXT argument {position} is empty")
    return list(args.texts)


def _decoded_stdin() -> str:
    """stdin as UTF-8 text; InputError naming the first byte that is not UTF-8."""
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputError(
            f"stdin: not UTF-8 text: byte 0x{data[error.start]:02x} at offset {error.start} "
            f"(line {line}); expected UTF-8 text, one text per line"
        ) from None


def _read_file(path: Path, column: str = "text") -> list[str]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        import pandas as pd

        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise InputError(f"{path}: not a readable CSV ({error})") from None
        if column not in frame.columns:
            raise InputError(
                f"{path}: no {column!r} column (columns: {list(frame.columns)}); "
                "expected a CSV with a text column (name it with --text-column)"
            )
        texts = frame[column].tolist()
        for row, text in enumerate(texts, start=2):
            if not text.strip():
                raise InputError(f"{path}: row {row}: empty text")
        if not texts:
            raise InputError(f"{path}: no rows")
        return texts
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error})") from None
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise InputError(f"{path}: no texts (expected one text per line)")
    return texts


def predict(args) -> int:
    if args.output and Path(args.output).is_dir():
        raise UsageError(f"--output {args.output} is a folder; expected a file path")
    reads_file = args.file not in (None, "-")
    if args.output and reads_file and Path(args.output).resolve() == Path(args.file).resolve():
        raise UsageError(
            f"--output {args.output} is the input file; expected another path "
            "(the input would be overwritten)"
        )
    texts = read_texts(args)
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not args.adapter.is_dir():
        raise UsageError(f"{args.adapter}: no such adapter directory")
    if args.device and args.device.startswith("cuda"):
        import torch

        index = int(args.device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {args.device}: "
                f"this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if args.model_dir is not None and not (args.model_dir / "config.json").is_file():
        raise UsageError(f"{args.model_dir}: not a prepared model directory (no config.json)")

    import pandas as pd
    import torch
    from transformers.utils import logging as hf_logging

    from adaptune.approaches.adapters import load_trained, prompt_scorer, record_completions
    from adaptune.data.prompts import render
    from adaptune.hardware.precision import prepare_for_inference
    from adaptune.lm.scoring import ScoringSettings, label_probabilities

    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer, meta = load_trained(
        args.adapter, args.model_dir, args.quantization, device=args.device
    )
    prepare_for_inference(model, meta["precision"])  # as evaluation scores it (bf16-base)
    labels = list(meta["labels"])
    template = meta.get("template")
    if not template:
        raise InputError(f"{args.adapter}: the adapter records no prompt template; retrain it")
    prompts = [render(template, text, labels) for text in texts]
    bar = ProgressBar(len(prompts))
    score = prompt_scorer(meta["approach"])  # label log-likelihoods, or a head's log-softmax
    scores, _ = score(
        model,
        tokenizer,
        prompts,
        labels,
        ScoringSettings(
            batch_size=args.batch_size,
            max_length=int(meta["max_length"]),
            truncation_side=meta["truncation_side"],
            precision=meta["precision"],
        ),
        progress=bar.update_to,
        completions=record_completions(meta),
    )
    bar.close()
    probabilities = label_probabilities(scores)
    frame = pd.DataFrame({"text": texts, "predicted": [labels[i] for i in scores.argmax(axis=1)]})
    for j, label in enumerate(labels):
        frame[score_column(PROB, label)] = probabilities[:, j].round(6)
    form = args.format or ("csv" if args.output else "tsv")
    if form == "jsonl":
        import json

        records = [
            {
                "text": text,
                "label": label,
                "probabilities": {name: round(float(p), 6) for name, p in zip(labels, row)},
            }
            for text, label, row in zip(texts, frame["predicted"], probabilities)
        ]
        if args.output:
            from adaptune.core.io import write_jsonl

            write_jsonl(args.output, records)
            print(f"wrote {len(frame)} predictions to {args.output}", file=sys.stderr)
        else:
            print("\n".join(json.dumps(record) for record in records))
    elif form == "csv":
        from adaptune.core.io import write_csv

        if args.output:
            write_csv(args.output, frame)
            print(f"wrote {len(frame)} predictions to {args.output}", file=sys.stderr)
        else:
            frame.to_csv(sys.stdout, index=False)
    else:
        columns = ["predicted"] + [score_column(PROB, label) for label in labels]
        lines = ["\t".join(columns + ["text"])]
        for row in frame.itertuples(index=False):
            values = [row.predicted] + [
                f"{getattr(row, score_column(PROB, label)):.4f}" for label in labels
            ]
            lines.append("\t".join(values + [row.text.replace("\t", " ").replace("\n", " ")]))
        if args.output:
            from adaptune.core.io import write_text

            write_text(args.output, "\n".join(lines) + "\n")
            print(f"wrote {len(frame)} predictions to {args.output}", file=sys.stderr)
        else:
            print("\n".join(lines))
    return 0


def export(args) -> int:
    if not args.adapter.is_dir():
        raise UsageError(f"{args.adapter}: no such adapter directory")
    if args.model_dir is not None and not (args.model_dir / "config.json").is_file():
        raise UsageError(f"{args.model_dir}: not a prepared model directory (no config.json)")
    from adaptune.train.export import export_model

    export_model(args.adapter, args.output, dtype=args.dtype, model_dir=args.model_dir)
    print(f"wrote the merged model ({args.dtype}) to {args.output}", file=sys.stderr)
    return 0


class ProgressBar:
    """tqdm on stderr for large inputs, only when stderr is a terminal (not in logs or pipes)."""

    def __init__(self, total: int):
        self._bar = None
        if total >= PROGRESS_MIN_TEXTS and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="text", file=sys.stderr, desc=PROG)

    def update_to(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def main(argv: list[str] | None = None) -> int:
    hub_offline()  # everything is local; never reach the Hub
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on a malformed command line
    from adaptune.approaches.adapters import AdapterError
    from adaptune.report.progress import ProgressError
    from adaptune.report.publish import PublishError

    # Only the errors of unusable input are one line; anything else is a bug and keeps its
    # traceback.
    try:
        if "run" in args:  # publish, readme, reanalyse, docs, progress
            return args.run(args)
        return export(args) if args.command == "export" else predict(args)
    except (UsageError, InputError, AdapterError, PublishError, ProgressError, OSError) as error:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return USAGE_ERROR if isinstance(error, UsageError) else FAILURE


if __name__ == "__main__":
    sys.exit(main())
