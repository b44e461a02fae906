"""Both cores busy: one job on every core against jobs paired one core each, for training and
for scoring.

    python bench/parallel_jobs.py [--cores 2] [--steps 12] [--kinds train score]
        [--model-dir resources/models/<config model>] [--rounds 2]

A training job is the pipeline's step (adaptune.train.step_timing.candidate_step: config.yaml's
lora_all, fp32, batch 4, on the reference split's prompts); a scoring job is the evaluation's
scorer (adaptune.lm.scoring.score_labels, batch 16) over val prompts. For each kind the script
times, in worker processes that load the model first and start together:

    one job, N threads      one worker with --cores threads (the pipeline's `threads: 2`)
    N jobs, 1 thread each   --cores workers at once, one thread each (`threads: 1`)

and prints samples/s of all jobs together and the ratio: above 1, pairing one-thread jobs gets
more done with the same cores. The variants alternate for --rounds rounds. Not a test: timings
depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import benchlib

# A worker: load the model for each kind, warm up, say "ready"; then for each line
# "<kind> <threads> <steps>" time that many units of work at that many threads and answer with
# JSON. The workers start once and serve every round, so the imports are paid once.
WORKER = """
import json, sys, time
sys.path.insert(0, {bench!r})
import benchlib, torch
model_dir, *kinds = sys.argv[1:]
work = {{}}
if "train" in kinds:
    from adaptune.train.step_timing import candidate_step
    settings = benchlib.lora_all_settings()
    rows = benchlib.reference_rows("train", limit=160)
    work["train"] = (candidate_step(settings, model_dir, rows, "32-true"), settings.batch_size)
if "score" in kinds:
    from adaptune.lm.models import load_model
    from adaptune.lm.scoring import ScoringSettings, score_labels
    labels = benchlib.config()["labels"]
    prompts = [r["prompt"] for r in benchlib.reference_rows("val", limit=64)]
    model, tokenizer = load_model(model_dir, "none")
    model.eval()
    def score():
        score_labels(model, tokenizer, prompts, labels, ScoringSettings(16, 96))
    work["score"] = (score, len(prompts))
for step, _ in work.values():
    step()
print("ready", flush=True)
for line in sys.stdin:
    kind, threads, steps = line.split()
    step, per_unit = work[kind]
    torch.set_num_threads(int(threads))
    start = time.perf_counter()
    for _ in range(int(steps)):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({{"samples": per_unit * int(steps), "seconds": seconds}}), flush=True)
"""


def start_workers(count: int, kinds: list[str], model_dir) -> list[subprocess.Popen]:
    code = WORKER.format(bench=str(benchlib.ROOT / "bench"))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(model_dir), *kinds],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for worker in workers:
        while worker.stdout.readline().strip() != "ready":
            if worker.poll() is not None:
                sys.exit("a worker failed to start")
    return workers


def run_together(workers, kind: str, threads: int, steps: int) -> float:
    """Samples/s of `workers` working at once, `threads` threads each, from the common start to
    the last finish."""
    start = time.perf_counter()
    for worker in workers:
        worker.stdin.write(f"{kind} {threads} {steps}\n")
        worker.stdin.flush()
    results = [json.loads(worker.stdout.readline()) for worker in workers]
    wall = time.perf_counter() - start
    return sum(r["samples"] for r in results) / wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12, help="steps (train) or passes (score)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--kinds", nargs="+", default=["train", "score"], choices=["train", "score"]
    )
    args = parser.parse_args()

    model_dir = benchlib.model_dir(args.model_dir)
    steps = {"train": args.steps, "score": max(1, args.steps // 4)}
    print(
        f"{benchlib.cpu_name()}, {args.cores} cores; {model_dir.name}; "
        f"{args.rounds} rounds, variants alternating"
    )
    print(
        f"{'kind':<7}{'one job, ' + str(args.cores) + ' threads':>22}"
        f"{str(args.cores) + ' jobs, 1 thread':>20}{'paired / one':>14}"
    )
    workers = start_workers(args.cores, args.kinds, model_dir)
    for kind in args.kinds:
        one, paired = [], []
        for _ in range(args.rounds):
            one.append(run_together(workers[:1], kind, args.cores, steps[kind]))
            paired.append(run_together(workers, kind, 1, steps[kind]))
        a, b = statistics.median(one), statistics.median(paired)
        print(f"{kind:<7}{a:>17.2f} /s{b:>15.2f} /s{b / a:>13.2f}x")
    for worker in workers:
        worker.stdin.close()
        worker.wait()


if __name__ == "__main__":
    main()
