"""The generated blocks of README.md and docs/: each names the publications it is made from, and
`adaptune docs` rewrites every one from their committed files (a test regenerates them and fails
when a page and the files disagree). Two kinds: a run's cost (`adaptune.report.cost`) and the
learning rate's share of the reference gap (`adaptune.report.rate_gap`).

    adaptune docs
"""

from __future__ import annotations

import os
from pathlib import Path

from adaptune.core.io import write_text
from adaptune.report import cost, rate_gap
from adaptune.report.publish import PublishError

GENERATORS = (cost, rate_gap)
# The pages that may hold generated blocks.
PAGES = ("README.md", "docs/*.md")


def pages(repo: str | os.PathLike = ".") -> list[Path]:
    return sorted(p for pattern in PAGES for p in Path(repo).glob(pattern))


def generated_page(text: str, page_dir: str, repo: str | os.PathLike = ".") -> str:
    """A page's `text` with every generated block rewritten from its publications."""
    for generator in GENERATORS:
        text = generator.generated_page(text, page_dir, repo)
    return text


def without_generated_blocks(text: str) -> str:
    for generator in GENERATORS:
        text = generator.BLOCK.sub("", text)
    return text


def write_docs(repo: str | os.PathLike = ".") -> list[Path]:
    """Rewrite the generated blocks of every page; returns the pages that changed."""
    changed = []
    for page in pages(repo):
        text = page.read_text(encoding="utf-8")
        try:
            new = generated_page(text, page.parent.relative_to(repo).as_posix(), repo)
        except PublishError as error:
            raise PublishError(f"{page.relative_to(repo)}: {error}") from None
        if new != text:
            write_text(page, new)
            changed.append(page)
    return changed
