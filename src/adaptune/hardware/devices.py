"""A GPU of its own for every job: a lock-file slot allocator.

Snakemake counts a `gpu` resource (so `--resources gpu=2` runs at most two GPU jobs at once) but
assigns no device ids: without help both jobs would land on GPU 0. `claim_devices(n)`, called
at the start of a job before torch touches CUDA, takes `n` free devices by locking one file per
device (fcntl.flock) in a folder shared by the jobs of the machine, and sets
CUDA_VISIBLE_DEVICES to them, so the job's "cuda:0" is its own device. The locks are held by an
open file of the process: they go when it exits, however it ends (a crash or SIGKILL included),
and the next job takes the device.

Left alone (the environment decides) where:
  - the job runs inside a SLURM allocation (SLURM_JOB_ID) that shows it exactly the devices it
    asks for (CUDA_VISIBLE_DEVICES, else SLURM_STEP_GPUS or SLURM_JOB_GPUS): SLURM gave them to
    it. Where the allocation shows more (`salloc --gpus=4`, then local Snakemake jobs of one GPU
    each), the jobs share them through the locks like the jobs of any machine;
  - the process is a DDP worker started by Lightning (LOCAL_RANK > 0): its parent holds the
    devices and passed CUDA_VISIBLE_DEVICES on;
  - the machine has no GPU.
The devices to share are those in CUDA_VISIBLE_DEVICES when it is set, else all of them
(counted by `nvidia-smi -L`, which, unlike torch, does not initialise CUDA in this process).
ADAPTUNE_GPUS overrides the count (e.g. to leave GPUs out, or in tests) and ADAPTUNE_GPU_LOCKS
the lock folder. The default, .snakemake/adaptune-gpu-locks/<host> in the job's working directory
(Snakemake's workdir), is the same for every job of a study on one machine, unlike $TMPDIR, which
some clusters set per job; the host name keeps two nodes' GPU 0 apart where the working
directory is shared between nodes. Studies in other working directories that share a machine's
GPUs need one ADAPTUNE_GPU_LOCKS folder.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Open lock files of the devices this process holds; kept referenced so they stay locked.
_held: list = []


def lock_dir() -> Path:
    default = Path.cwd() / ".snakemake" / "adaptune-gpu-locks" / socket.gethostname()
    return Path(os.environ.get("ADAPTUNE_GPU_LOCKS") or default)


def visible_devices() -> list[str]:
    """The device ids jobs on this machine share (strings, as CUDA_VISIBLE_DEVICES spells them)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip()]
    count = os.environ.get("ADAPTUNE_GPUS")
    if count is not None:
        if not count.isdigit():
            raise ValueError(f"ADAPTUNE_GPUS: got {count!r}, expected a number of devices")
        return [str(i) for i in range(int(count))]
    return [str(i) for i in range(nvidia_smi_count())]


def nvidia_smi_count() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return (
        sum(line.startswith("GPU ") for line in done.stdout.splitlines())
        if done.returncode == 0
        else 0
    )


def slurm_devices() -> list[str] | None:
    """The devices a SLURM job or step shows this process, or None outside SLURM."""
    if not os.environ.get("SLURM_JOB_ID"):
        return None
    for variable in ("CUDA_VISIBLE_DEVICES", "SLURM_STEP_GPUS", "SLURM_JOB_GPUS"):
        value = os.environ.get(variable)
        if value is not None:
            return [d.strip() for d in value.split(",") if d.strip()]
    return []


def decided_elsewhere(count: int = 1) -> str | None:
    """Why this process must not choose its `count` devices itself, or None."""
    shown = slurm_devices()
    if shown is not None and len(shown) == count:
        return "inside a SLURM allocation that gave this job its devices"
    if int(os.environ.get("LOCAL_RANK", "0") or 0) > 0:
        return "a DDP worker: the process that started it holds the devices"
    return None


def claim_devices(count: int = 1, wait_s: float | None = None, poll_s: float = 2.0) -> list[str]:
    """Take `count` free devices for this process and make them the only visible ones; returns
    their ids ([] where nothing is to be chosen). Waits for devices to come free (up to wait_s
    seconds, forever when None), logging what it waits for."""
    if count < 1:
        raise ValueError(f"claim_devices: count must be at least 1, got {count}")
    reason = decided_elsewhere(count)
    if reason:
        log.info(
            "devices: left as they are (%s): CUDA_VISIBLE_DEVICES=%s",
            reason,
            os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"),
        )
        return []
    devices = visible_devices()
    if not devices:
        return []
    if count > len(devices):
        raise RuntimeError(
            f"this job needs {count} GPUs "
            f"but the machine shows {len(devices)} ({','.join(devices)})"
        )
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    started, announced = time.monotonic(), False
    while True:
        taken = _try_lock(folder, devices, count)
        if taken:
            ids = [device for device, _ in taken]
            _held.extend(handle for _, handle in taken)
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
            log.info(
                "devices: took GPU %s of %s (locks in %s)", ",".join(ids), ",".join(devices), folder
            )
            return ids
        if wait_s is not None and time.monotonic() - started >= wait_s:
            raise TimeoutError(
                f"no {count} free GPU(s) of {','.join(devices)} within {wait_s} s "
                f"(locks in {folder})"
            )
        if not announced:
            log.info("devices: all of %s are taken by other jobs; waiting", ",".join(devices))
            announced = True
        time.sleep(poll_s)


def _try_lock(folder: Path, devices: list[str], count: int) -> list:
    """(device, open lock file) for `count` devices locked now, or [] (holding none)."""
    taken = []
    for device in devices:
        handle = open(folder / f"gpu-{device}.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        taken.append((device, handle))
        if len(taken) == count:
            return taken
    release(taken)
    return []


def release(taken: list | None = None) -> None:
    """Give back devices (default: all this process holds); exiting does the same."""
    handles = [h for _, h in taken] if taken is not None else list(_held)
    for handle in handles:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
        if handle in _held:
            _held.remove(handle)
