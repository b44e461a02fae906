"""What every metrics.json and summary.json carries about how it was made."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = (
    "adaptune",
    "torch",
    "transformers",
    "peft",
    "bitsandbytes",
    "pytorch-lightning",
    "scikit-learn",
    "pandas",
    "snakemake",
    "openai",
)


def package_versions(packages=PACKAGES) -> dict[str, str | None]:
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(directory: str | Path = ".") -> str | None:
    """The commit of the checkout, with '-dirty' if it has uncommitted changes; None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def machine(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU model and the cores this process may use, e.g. 'AMD EPYC 9B14, 2 cores'."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path(cpuinfo).read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} core{'s' if cores != 1 else ''}"


def peak_memory_mb() -> float:
    """Peak resident memory of this process (and, on a GPU, peak allocated CUDA memory)."""
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 / 1024 / 1024 if sys.platform == "darwin" else 1 / 1024  # bytes on macOS
    return round(rss_kb * scale, 1)


def peak_gpu_memory_mb() -> float | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


class Stopwatch:
    """Wall time since creation."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


def provenance(config: dict, seed: int | None, stopwatch: Stopwatch | None = None) -> dict:
    """The provenance block: config section, versions, seed, commit, machine, wall time, peak
    memory. The machine, as one study may go on across several (adaptune progress)."""
    return {
        "config": config,
        "seed": seed,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "machine": machine(),
        "wall_time_s": round(stopwatch.seconds, 2) if stopwatch else None,
        "peak_memory_mb": peak_memory_mb(),
        "peak_gpu_memory_mb": peak_gpu_memory_mb(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
