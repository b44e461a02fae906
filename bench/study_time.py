"""Where a finished study's time went, from its own records: Snakemake's benchmark files (one
per job), the training cells' summary.json and the precision decision.

    python bench/study_time.py [--root .] [--target-minutes 25]

Prints, per rule, the jobs, their summed seconds and share; the span from the first job's start
to the last one's end; for the training cells, the time in steps against the rest of the job
(model loading, validation passes, saving) and the samples/s of the steps; and what the step
would have to reach for the whole study to fit the target, the rest unchanged. The study's jobs
each declare the machine's 2 cores, so they run one after another and the summed job time is
close to the span.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from adaptune.report.publish import benchmark_records, run_time


def job_seconds(benchmarks: Path) -> dict[str, list[float]]:
    """Seconds of every job by rule (the first folder under benchmarks/, or the file's stem)."""
    by_rule: dict[str, list[float]] = defaultdict(list)
    for record in benchmark_records(benchmarks):
        by_rule[record["job"].split("/")[0]].append(record["seconds"])
    return by_rule


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--root", type=Path, default=Path("."), help="the study's working directory"
    )
    parser.add_argument("--target-minutes", type=float, default=25.0)
    args = parser.parse_args()

    by_rule = job_seconds(args.root / "benchmarks")
    if not by_rule:
        raise SystemExit(f"{args.root / 'benchmarks'}: no benchmark files; run the study first")
    total = sum(sum(seconds) for seconds in by_rule.values())
    span = run_time(args.root / "benchmarks")
    decision = args.root / "results/hardware/precision.json"
    if decision.is_file():
        record = json.loads(decision.read_text())
        print(
            f"CPU {record['cpu']} (bf16 flags: {', '.join(record['cpu_bf16_flags']) or 'none'}), "
            f"{record['threads']} threads, torch {record['torch']}; matmul "
            f"fp32 {record['matmul_gflops']['float32']} / "
            f"bf16 {record['matmul_gflops']['bfloat16']} GFLOP/s; "
            f"precision {record['choice']} ({record['reason']})"
        )
    print(
        f"{span['jobs']} jobs, {total / 60:.1f} min of job time, "
        f"{span['wall_time_s'] / 60:.1f} min "
        f"from the first job's start to the last one's end\n"
    )
    print("| rule | jobs | minutes | share | seconds per job |")
    print("| --- | --- | --- | --- | --- |")
    for rule, seconds in sorted(by_rule.items(), key=lambda item: -sum(item[1])):
        print(
            f"| {rule} | {len(seconds)} | {sum(seconds) / 60:.1f} | {sum(seconds) / total:.0%} | "
            f"{min(seconds):.0f}–{max(seconds):.0f} |"
            if len(seconds) > 1
            else (
                f"| {rule} | 1 | {sum(seconds) / 60:.1f} | {sum(seconds) / total:.0%} | "
                f"{seconds[0]:.0f} |"
            )
        )

    summaries = [
        json.loads(p.read_text())
        for p in sorted((args.root / "results/train").rglob("summary.json"))
    ]
    if not summaries:
        return
    steps = sum(s["train_time_s"] for s in summaries)
    jobs = sum(sum(v) for k, v in by_rule.items() if k.startswith("train"))
    samples = sum(s["train_samples"] * s["epochs"] for s in summaries)
    print(
        f"\nTraining: {len(summaries)} cells, {samples} samples in {steps / 60:.1f} min of steps "
        f"({samples / steps:.2f} samples/s); "
        f"{(jobs - steps) / 60:.1f} min of the training jobs outside "
        "the steps (loading, validation passes, saving)."
    )
    rest = total - steps
    budget = args.target_minutes * 60
    if rest >= budget:
        print(
            f"A {args.target_minutes:g}-minute study is out of reach by the steps alone: "
            f"the rest of the study already takes {rest / 60:.1f} min."
        )
    else:
        print(
            f"For {args.target_minutes:g} minutes with the rest unchanged ({rest / 60:.1f} min), "
            f"the steps would have to run {steps / (budget - rest):.2f}x as fast "
            f"({samples / (budget - rest):.2f} samples/s)."
        )


if __name__ == "__main__":
    main()
