"""The jobs that train and score read local files only; the Hugging Face Hub is for the rules that
download (fetch_model, prepare_model).

bitsandbytes, on a CPU with AVX512-BF16, fetches a 4-bit kernel from the Hub as it is imported
(through the `kernels` package, which transformers requires). On a compute node without network
that is a wait for a connection that never comes, in every job; elsewhere, code downloaded
unpinned into a study that claims to be reproducible. With HF_HUB_OFFLINE set the fetch fails
at once and bitsandbytes keeps its built-in kernel; a job that would need anything else from
the Hub says so instead of fetching it.
"""

from __future__ import annotations

import os


def hub_offline() -> None:
    """Keep this process off the Hub (HF_HUB_OFFLINE=1, unless the environment sets it): call it
    before torch, transformers or bitsandbytes are imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
