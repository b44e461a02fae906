"""The lock-file device allocator: concurrent jobs on a machine with N (pretend) GPUs each get a
device of their own, give it back when they end, also when killed with SIGKILL, and leave the
choice to SLURM where it gave a job exactly its devices, or to the DDP parent. Their lock folder
does not depend on $TMPDIR."""

from __future__ import annotations

import os
import signal
import subprocess
import select
import sys

import pytest

from conftest import REPO

# A job: claims one device, prints what it got and CUDA_VISIBLE_DEVICES, holds it until stdin
# closes.
JOB = """
import os, sys
from adaptune.hardware.devices import claim_devices
ids = claim_devices(int(sys.argv[1]), wait_s=float(sys.argv[2]), poll_s=0.1)
print("GOT", ",".join(ids) or "-", os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def machine(tmp_path):
    """The environment of jobs on a machine with three pretend GPUs and its own lock folder."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CUDA_VISIBLE_DEVICES", "LOCAL_RANK") and not k.startswith("SLURM_")
    }
    return {
        **env,
        "PYTHONPATH": str(REPO / "src"),
        "ADAPTUNE_GPUS": "3",
        "ADAPTUNE_GPU_LOCKS": str(tmp_path / "locks"),
    }


class Job:
    def __init__(self, env: dict, count: int = 1, wait_s: float = 30, cwd=None):
        self.process = subprocess.Popen(
            [sys.executable, "-c", JOB, str(count), str(wait_s)],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def got(self) -> tuple[list[str], str]:
        line = self.process.stdout.readline()
        assert line.startswith("GOT"), (
            line,
            self.process.stderr.read() if self.process.poll() is not None else "",
        )
        _, ids, visible = line.split()
        return [] if ids == "-" else ids.split(","), visible

    def finish(self) -> int:
        self.process.stdin.close()
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def test_concurrent_jobs_get_distinct_devices_and_give_them_back(machine):
    jobs = [Job(machine) for _ in range(3)]
    got = [job.got() for job in jobs]
    assert sorted(ids[0] for ids, _ in got) == ["0", "1", "2"]
    assert all(visible == ids[0] for ids, visible in got)  # the job's cuda:0 is its own device

    waiting = Job(machine)  # a fourth job waits for a device to come free
    ready, _, _ = select.select([waiting.process.stdout], [], [], 3.0)
    assert not ready and waiting.process.poll() is None
    freed = got[1][0][0]
    assert jobs[1].finish() == 0
    assert waiting.got() == ([freed], freed)
    for job in (jobs[0], jobs[2], waiting):
        assert job.finish() == 0


def test_a_killed_job_gives_its_device_back(machine):
    first, second = Job(machine), Job(machine)
    (a, _), (b, _) = first.got(), second.got()
    first.kill()  # SIGKILL: no cleanup runs; the lock goes with the process
    third, fourth = Job(machine), Job(machine)
    got = {third.got()[0][0], fourth.got()[0][0]}
    assert got == {"0", "1", "2"} - set(b)
    assert a[0] in got
    for job in (second, third, fourth):
        job.finish()


def test_a_job_with_two_devices_and_one_left_waits_then_times_out(machine):
    pair = Job(machine, count=2)
    ids, visible = pair.got()
    assert len(set(ids)) == 2 and visible == ",".join(ids)
    late = Job(machine, count=2, wait_s=1)
    assert late.process.wait(timeout=30) != 0
    assert "no 2 free GPU(s) of 0,1,2 within 1" in late.process.stderr.read()
    pair.finish()


def test_visible_devices_are_the_pool(machine):
    job = Job({**machine, "CUDA_VISIBLE_DEVICES": "5,7"})
    other = Job({**machine, "CUDA_VISIBLE_DEVICES": "5,7"})
    assert {job.got()[0][0], other.got()[0][0]} == {"5", "7"}
    job.finish(), other.finish()


@pytest.mark.parametrize("variable, value", [("SLURM_JOB_ID", "123"), ("LOCAL_RANK", "1")])
def test_slurm_and_ddp_workers_keep_their_devices(machine, variable, value):
    job = Job({**machine, variable: value, "CUDA_VISIBLE_DEVICES": "2"})
    assert job.got() == ([], "2")
    job.finish()


def test_no_gpu_no_choice(machine):
    job = Job({**machine, "ADAPTUNE_GPUS": "0"})
    assert job.got() == ([], "<unset>")
    job.finish()


@pytest.mark.parametrize(
    "shown",
    [{"CUDA_VISIBLE_DEVICES": "0,1"}, {"SLURM_STEP_GPUS": "4,6"}, {"SLURM_JOB_GPUS": "4,6"}],
)
def test_a_slurm_job_given_exactly_its_devices_keeps_them(machine, shown):
    job = Job({**machine, "SLURM_JOB_ID": "123", **shown}, count=2)
    assert job.got() == ([], shown.get("CUDA_VISIBLE_DEVICES", "<unset>"))
    job.finish()


def test_jobs_inside_one_slurm_allocation_of_several_gpus_share_them(machine):
    """`salloc --gpus=4`, then local Snakemake jobs of one GPU each: each takes its own."""
    allocation = {
        **machine,
        "SLURM_JOB_ID": "123",
        "SLURM_JOB_GPUS": "0,1,2,3",
        "CUDA_VISIBLE_DEVICES": "0,1,2,3",
    }
    jobs = [Job(allocation) for _ in range(4)]
    got = [job.got() for job in jobs]
    assert sorted(ids[0] for ids, _ in got) == ["0", "1", "2", "3"]
    assert all(visible == ids[0] for ids, visible in got)
    for job in jobs:
        job.finish()


def test_jobs_with_their_own_tmpdir_share_one_lock_folder(machine, tmp_path):
    """Some clusters give every job its own $TMPDIR: the locks live in the working directory."""
    shared = {k: v for k, v in machine.items() if k != "ADAPTUNE_GPU_LOCKS"}
    workdir = tmp_path / "study"
    workdir.mkdir()
    jobs = []
    for i in range(3):
        (tmp_path / f"tmp{i}").mkdir()
        jobs.append(Job({**shared, "TMPDIR": str(tmp_path / f"tmp{i}")}, cwd=workdir))
    assert sorted(job.got()[0][0] for job in jobs) == ["0", "1", "2"]
    assert list((workdir / ".snakemake" / "adaptune-gpu-locks").glob("*/gpu-*.lock"))
    for job in jobs:
        job.finish()
