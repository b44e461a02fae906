"""A job's log: the other processes of a DDP run, which run the job's script again, never empty
the first process's log."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO

# A process that routes its logging to the log file given and logs one line naming itself.
PROCESS = """
import logging, sys
from adaptune.core.logs import log_to
log_to(sys.argv[1])
logging.getLogger("train").info("line of %s", sys.argv[2])
"""


def run(log, name: str, **env) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK")}
    done = subprocess.run(
        [sys.executable, "-c", PROCESS, str(log), name],
        capture_output=True,
        text=True,
        env={**clean, "PYTHONPATH": str(REPO / "src"), **env},
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("variable", ["LOCAL_RANK", "RANK"])
def test_a_second_rank_keeps_the_first_ranks_log_and_writes_its_own(tmp_path, variable):
    log = tmp_path / "train.log"
    run(log, "rank 0")
    run(log, "rank 1", **{variable: "1"})
    assert "line of rank 0" in log.read_text() and "rank 1" not in log.read_text()
    assert "line of rank 1" in (tmp_path / "train.log.rank1").read_text()


def test_the_first_process_starts_its_log_afresh(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("an earlier attempt\n")
    run(log, "rank 0", LOCAL_RANK="0")
    assert "an earlier attempt" not in log.read_text() and "line of rank 0" in log.read_text()
