"""Both cores busy: one job on every core against jobs paired one core each, for training and
for scoring.

    python bench/parallel_jobs.py [--cores 2] [--steps 12] [--kinds train score]
        [--model-dir resources/models/<config model>] [--rounds 2]

A training job is the pipeline's step (adaptune.train.step_timing.candidate_step: config.yaml's
lora_all, fp32, batch 4, on the reference split's prompts); a scoring job is the evaluation's
scorer (adaptune.lm.scoring.score_labels, batch 16) over val prompts. For each kind the script
times, in separate processes that load the model first and start together:

    one job, N threads      one process with --cores threads (the pipeline's `threads: 2`)
    N jobs, 1 thread each   --cores processes at once, one thread each (`threads: 1`)

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

# One job: load, warm up, say "ready", wait for "go", then time `steps` units of work.
WORKER = """
import json, sys, time
sys.path.insert(0, {bench!r})
import benchlib, torch
kind, threads, steps, model_dir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
if kind == "train":
    from adaptune.train.step_timing import candidate_step
    settings = benchlib.lora_all_settings()
    rows = benchlib.reference_rows("train", limit=160)
    step = candidate_step(settings, model_dir, rows, "32-true")
    per_unit = settings.batch_size
else:
    from adaptune.lm.models import load_model
    from adaptune.lm.scoring import ScoringSettings, score_labels
    labels = benchlib.config()["labels"]
    prompts = [r["prompt"] for r in benchlib.reference_rows("val", limit=64)]
    model, tokenizer = load_model(model_dir, "none")
    model.eval()
    def step():
        score_labels(model, tokenizer, prompts, labels, ScoringSettings(16, 96))
    per_unit = len(prompts)
step()
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
for _ in range(steps):
    step()
seconds = time.perf_counter() - start
print(json.dumps({{"samples": per_unit * steps, "seconds": seconds}}), flush=True)
"""


def run_together(kind: str, jobs: int, threads: int, steps: int, model_dir) -> float:
    """Samples/s of `jobs` concurrent processes of `threads` threads each, from the first start
    to the last finish."""
    code = WORKER.format(bench=str(benchlib.ROOT / "bench"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, kind, str(threads), str(steps), str(model_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(jobs)
    ]
    for proc in procs:
        while proc.stdout.readline().strip() != "ready":
            if proc.poll() is not None:
                sys.exit(f"a {kind} job failed to start")
    start = time.perf_counter()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [json.loads(proc.stdout.readline()) for proc in procs]
    wall = time.perf_counter() - start
    for proc in procs:
        proc.wait()
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
    for kind in args.kinds:
        one, paired = [], []
        for _ in range(args.rounds):
            one.append(run_together(kind, 1, args.cores, steps[kind], model_dir))
            paired.append(run_together(kind, args.cores, 1, steps[kind], model_dir))
        a, b = statistics.median(one), statistics.median(paired)
        print(f"{kind:<7}{a:>17.2f} /s{b:>15.2f} /s{b / a:>13.2f}x")


if __name__ == "__main__":
    main()
