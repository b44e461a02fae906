"""Numbers in the docs that describe a published run agree with that run's committed files:
a line that links a study under docs/results/ and gives its job count, its minutes from first
job to last or its hours of running must give the ones its run.json records."""

import json
import re

import pytest

from conftest import REPO

RESULTS = REPO / "docs" / "results"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
STUDIES = sorted(p.parent.name for p in RESULTS.glob("*/run.json"))


def lines_about(study: str):
    """(page, line number, line) of every line that links the published `study`."""
    link = re.compile(rf"results/{study}\b")
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if link.search(line):
                yield page.relative_to(REPO), number, line


def claims(line: str) -> dict[str, list[float]]:
    """The job counts, minutes and hours of running a line states. In a table row whose third
    column is a bare number, that number is the job count (docs/performance.md's cost table)."""
    found = {
        "jobs": [float(n) for n in re.findall(r"\b(\d+) jobs\b", line)],
        # A run's minutes, not a job's: "N min, the published run", "N min from first job to last".
        "minutes": [
            float(n)
            for n in re.findall(
                r"\b(\d+(?:\.\d)?) min(?=,? (?:the published run|from first))", line
            )
        ],
        "hours": [float(n) for n in re.findall(r"\b(\d+(?:\.\d)?) h of running\b", line)],
    }
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if line.lstrip().startswith("|") and len(cells) > 3 and cells[2].isdigit():
        found["jobs"].append(float(cells[2]))
    return found


@pytest.mark.parametrize("study", STUDIES)
def test_numbers_that_describe_a_published_run_are_the_runs_own(study):
    timing = json.loads((RESULTS / study / "run.json").read_text())["run_time"]
    actual = {
        "jobs": timing["jobs"],
        "minutes": timing["wall_time_s"] / 60,
        # Older runs recorded no busy time: their hours of running are not stated.
        "hours": timing.get("busy_time_s", float("nan")) / 3600,
    }
    checked, wrong = 0, []
    for page, number, line in lines_about(study):
        for kind, values in claims(line).items():
            for value in values:
                checked += 1
                # A stated number is the recorded one rounded to the digits it shows.
                if round(actual[kind], 0 if value == int(value) else 1) != value:
                    wrong.append(f"{page}:{number}: {value:g} {kind}, run.json: {actual[kind]:.1f}")
    assert not wrong, "\n".join(wrong)
    assert checked or study == "tuned", f"no line gives docs/results/{study}'s numbers to check"


def test_the_check_reads_a_stated_number():
    line = "| `snakemake` | the study | 18 | 87 min, the published run (results/reference) |"
    assert claims(line) == {"jobs": [18.0], "minutes": [87.0], "hours": []}


def _prose_words(text: str) -> list[str]:
    """A page's words outside its fenced code blocks (a command may well appear twice)."""
    prose = re.sub(r"```.*?```", " ", text, flags=re.S)
    return re.findall(r"[a-z0-9_.'-]+", prose.lower())


def test_no_two_pages_repeat_a_passage():
    """Each fact is written on one page and linked from the others: no run of 12 words of prose
    appears on two pages."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    pages += [REPO / "profiles" / "README.md", REPO / "bench" / "README.md"]
    pages += [REPO / "data" / "README.md"]
    runs = {}
    for page in pages:
        words = _prose_words(page.read_text())
        runs[page] = {" ".join(words[i : i + 12]) for i in range(len(words) - 11)}
    repeated = [
        f"{a.relative_to(REPO)} and {b.relative_to(REPO)}: {sorted(runs[a] & runs[b])[:2]}"
        for i, a in enumerate(pages)
        for b in pages[i + 1 :]
        if runs[a] & runs[b]
    ]
    assert not repeated, "\n".join(repeated)
