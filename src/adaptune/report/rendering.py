"""Markdown and HTML pages of the report: the answer first, then the tables, then the reference
study's published figures in a block of their own."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from adaptune.core.io import write_text
from adaptune.report.reference_study import (
    REFERENCE_MAJORITY,
    REFERENCE_SOURCE,
    REFERENCE_SPLIT,
    REFERENCE_VAL_COUNTS,
)
from adaptune.report.tables import reference_table


@dataclass(frozen=True)
class Section:
    title: str
    table: pd.DataFrame
    note: str = ""


def markdown_table(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(c) for c in frame.columns) + " |",
        "| " + " | ".join("---" for _ in frame.columns) + " |",
    ]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


REFERENCE_NOTE = (
    f"From {REFERENCE_SOURCE}: GPT-J-6B held in 8-bit, fine-tuned with PyTorch Lightning "
    f"on 1,000 balanced tweets, accuracy on {REFERENCE_SPLIT}, each number under the "
    "rule it was scored by (its fine-tuned number: argmax over the whole vocabulary; its "
    "3-shot number: argmax over the three label tokens). That split is not balanced ("
    + ", ".join(f"{n} {label}" for label, n in REFERENCE_VAL_COUNTS.items())
    + f'): always answering "{REFERENCE_MAJORITY[0]}" scores {REFERENCE_MAJORITY[1]:.2f}. '
    "A different model and split from the rows above, so these numbers are context, not "
    "part of the ranking; configs/reference.yaml runs its protocol on this pipeline."
)


SAME_SPLIT_NOTE = (
    "This run used the reference study's protocol and split (configs/reference.yaml): "
    "these are this pipeline's numbers on the same 200 validation tweets, "
    "comparable with the published ones above."
)


def write_page(
    stem_md,
    stem_html,
    title: str,
    lines: Sequence[str],
    sections: Sequence[Section],
    model_note: str = "",
    same_split: pd.DataFrame | None = None,
    figure: str = "",
) -> None:
    """`title`, the answer (`figure`, a picture's path relative to the page, then the `lines`),
    each non-empty section's table, then the reference block (with this pipeline's numbers on
    the reference split when `same_split` is given)."""
    md = [f"# {title}", ""]
    if figure:
        md += [
            f"![The planned comparisons: each difference, its interval and its verdict]({figure})",
            "",
        ]
    md += [*[f"- {line}" for line in lines], ""]
    if model_note:
        md += [model_note, ""]
    for section in sections:
        if section.table.empty:
            continue
        md += [f"## {section.title}", "", markdown_table(section.table), ""]
        if section.note:
            md += [section.note, ""]
    md += [
        "## Reference study (published figures, not reproduced here)",
        "",
        REFERENCE_NOTE,
        "",
        markdown_table(reference_table()),
    ]
    if same_split is not None and not same_split.empty:
        md += ["", SAME_SPLIT_NOTE, "", markdown_table(same_split)]
    write_text(stem_md, "\n".join(md) + "\n")
    write_text(stem_html, _html_page(title, lines, sections, model_note, same_split, figure))


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tbody tr:nth-child(even) { background: #fafafa; }
.answer { border-left: 4px solid #0173b2; padding: 0.2em 1em; background: #f3f8fc; }
.reference { border-left: 4px solid #999; padding: 0.2em 1em; background: #f7f7f7; }
.ci { color: #666; font-size: 0.88em; white-space: nowrap; }
.note { color: #555; font-size: 0.9em; max-width: 60em; }
"""


def _html_page(
    title: str,
    lines: Sequence[str],
    sections: Sequence[Section],
    model_note: str,
    same_split: pd.DataFrame | None,
    figure: str = "",
) -> str:
    body = [f"<h1>{html.escape(title)}</h1>"]
    if figure:
        body.append(
            f'<img src="{html.escape(figure)}" style="max-width: 100%" '
            'alt="The planned comparisons: each difference, its interval and its verdict">'
        )
    body.append('<div class="answer"><ul>')
    body += [f"<li>{html.escape(line)}</li>" for line in lines]
    body.append("</ul></div>")
    if model_note:
        body.append(f'<p class="note">{html.escape(model_note)}</p>')
    for section in sections:
        if section.table.empty:
            continue
        table = section.table.to_html(index=False, escape=True, border=0)
        # Each interval on its own line under its value: narrower columns, easier to scan.
        table = re.sub(
            r"(\d\.\d{3}(?: ± \d\.\d{3})?) (\[[-+]?\d\.\d{3}, [-+]?\d\.\d{3}\])",
            r'\1<br><span class="ci">\2</span>',
            table,
        )
        body += [f"<h2>{html.escape(section.title)}</h2>", table]
        if section.note:
            body.append(f'<p class="note">{html.escape(section.note)}</p>')
    body += [
        '<div class="reference">',
        "<h2>Reference study (published figures, not reproduced here)</h2>",
        f"<p>{html.escape(REFERENCE_NOTE)}</p>",
        reference_table().to_html(index=False, escape=True, border=0),
    ]
    if same_split is not None and not same_split.empty:
        body += [
            f"<p>{html.escape(SAME_SPLIT_NOTE)}</p>",
            same_split.to_html(index=False, escape=True, border=0),
        ]
    body.append("</div>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
