"""Imported first by every script: the job imports adaptune from this checkout, and in a
per-rule environment (`--use-conda`) only that environment's packages.

Snakemake starts a script with the host's whole sys.path appended (that is where it finds
itself), so a package missing from an environment would be taken from the host unnoticed.
Once Snakemake's own modules are loaded, the paths of any other Python installation are
dropped; a missing package then fails the job with ModuleNotFoundError, as on a fresh machine.
"""

import os
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
SOURCE = str(CHECKOUT / "src")


def _within(path: str, roots: list[Path]) -> bool:
    resolved = Path(path).resolve()
    return any(resolved == root or root in resolved.parents for root in roots)


def own_paths(paths: list[str], snakemake_module) -> list[str]:
    """`paths` without the entries of another Python installation, when this interpreter is
    not the one running Snakemake; the checkout's source first either way."""
    host = Path(snakemake_module.__file__).resolve().parents[1]
    interpreter = [Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    keep = [p for p in paths if p != SOURCE]
    if not _within(str(host), interpreter):
        # sys.path[0] is the folder of the running script; "" is the working directory. Only the
        # checkout's code folders: a virtualenv may live inside the checkout (.venv/).
        allowed = interpreter + [CHECKOUT / "src", CHECKOUT / "workflow"]
        keep = keep[:1] + [
            p for p in keep[1:] if not p or not os.path.isabs(p) or _within(p, allowed)
        ]
    return [SOURCE, *keep]


if "snakemake" in sys.modules:
    sys.path[:] = own_paths(sys.path, sys.modules["snakemake"])
else:
    sys.path.insert(0, SOURCE)
