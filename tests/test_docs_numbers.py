"""Numbers in the docs come from committed files: the cost tables are what `adaptune docs`
generates from the publications; no time or speed is typed by hand elsewhere in docs/; and a
line that links a study under docs/results/ and gives its job count, its minutes from first
job to last or its hours of running gives the ones its run.json records."""

import json
import re

import pytest

from adaptune.cli import main
from adaptune.report import cost, docs
from conftest import REPO

RESULTS = REPO / "docs" / "results"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
STUDIES = sorted(p.parent.name for p in RESULTS.glob("*/run.json"))


def lines_about(study: str):
    """(page, line number, line) of every line that links the published `study`."""
    link = re.compile(rf"results/{re.escape(study)}(?![\w-])")  # not results/<study>-other
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
    """A page's words outside its fenced code blocks (a command may well appear twice) and its
    HTML comments (the markers of generated blocks say the same of each block)."""
    prose = re.sub(r"```.*?```|<!--.*?-->", " ", text, flags=re.S)
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


def test_every_generated_block_is_what_its_publications_generate():
    blocks = 0
    for page in docs.pages(REPO):
        text = page.read_text()
        blocks += len(cost.BLOCK.findall(text))
        page_dir = page.parent.relative_to(REPO).as_posix()
        assert docs.generated_page(text, page_dir, REPO) == text, (
            f"{page.relative_to(REPO)}: a generated block differs from its publications' files; "
            "run `adaptune docs`"
        )
    assert blocks >= len(STUDIES), "a published study without its cost table in docs/"


def test_a_cost_block_without_its_files_is_refused_and_the_page_kept(tmp_path, capsys):
    (tmp_path / "docs/results/s").mkdir(parents=True)
    (tmp_path / "docs/results/s/run.json").write_text("{}")
    page = tmp_path / "docs/page.md"
    text = "<!-- cost:begin docs/results/s -->\nkept\n<!-- cost:end -->\n"
    page.write_text(text)
    assert main(["docs", "--repo", str(tmp_path)]) != 0
    error = capsys.readouterr().err
    assert "docs/page.md" in error and "docs/results/s, which has no jobs.csv" in error
    assert page.read_text() == text


def test_adaptune_docs_writes_a_stage_table_from_the_jobs(tmp_path, capsys):
    study = tmp_path / "docs/results/s"
    study.mkdir(parents=True)
    (study / "jobs.csv").write_text(
        "job,seconds,cpu_seconds,max_rss_mb\n"
        "train/m/lora_all/raw/none/seed1,600,590,1000\n"
        "train/m/lora_all/raw/none/seed2,300,290,1000\n"
        "evaluate/m/lora_all/raw/none/seed1,90,80,900\n"
        "report,10,9,300\n"
    )
    run = {"jobs": 4, "job_time_s": 1000, "wall_time_s": 700, "busy_time_s": 700}
    (study / "run.json").write_text(json.dumps({"machine": "a CPU, 2 cores", "run_time": run}))
    page = tmp_path / "docs/page.md"
    page.write_text("Before.\n\n<!-- cost:begin docs/results/s -->\nstale\n<!-- cost:end -->\n")
    assert main(["docs", "--repo", str(tmp_path)]) == 0
    text = page.read_text()
    assert text.startswith("Before.\n") and "stale" not in text
    assert "| training cells | 2 | 15.0 | 90 % | 300–600 |" in text
    assert "| evaluation of the cells | 1 | 1.5 | 9 % | 90 |" in text
    assert "| the rest (" in text and "| 1 | 0.2 | 1 % | 10 |" in text
    assert "[docs/results/s](results/s/): 4 jobs, 16.7 min of job time; 11.7 min from first" in text
    assert "a CPU, 2 cores." in text
    assert main(["docs", "--repo", str(tmp_path)]) == 0  # a second run changes nothing
    assert page.read_text() == text
    assert "0 page(s)" in capsys.readouterr().out.splitlines()[-1]


def test_adaptune_docs_names_a_block_whose_publication_is_missing(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/page.md").write_text(
        "<!-- cost:begin docs/results/gone -->\n<!-- cost:end -->\n"
    )
    assert main(["docs", "--repo", str(tmp_path)]) != 0
    error = capsys.readouterr().err
    assert "docs/page.md" in error and "docs/results/gone" in error and "run.json" in error


SPLIT_HEADER = (
    "system,model,n,accuracy,accuracy_ci_low,accuracy_ci_high,vocab_argmax_accuracy,macro_f1\n"
)


def publication_on_the_reference_split(folder, rows: dict[str, float], config: dict) -> None:
    """A publication of a run on the reference split: its reference_split.csv (each row's
    label-restricted accuracy with an interval of ±0.06, and the given whole-vocabulary accuracy)
    and its config.yaml."""
    import yaml

    folder.mkdir(parents=True)
    lines = [
        f'"{system}",m (8-bit),200,{vocab:.3f},{vocab - 0.06:.3f},{vocab + 0.06:.3f},{vocab},0.5\n'
        for system, vocab in rows.items()
    ]
    floor = 'always "hate" (the majority class),—,200,0.39,,,,0.19\n'
    (folder / "reference_split.csv").write_text(SPLIT_HEADER + "".join(lines) + floor)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))


def rate_gap_repo(tmp_path, rates_config: dict | None = None):
    import yaml

    protocol_rates = {"learning_rate": 1e-4}
    publication_on_the_reference_split(
        tmp_path / "docs/results/protocol",
        {"LoRA, all linear layers": 0.685, "Normalization layers only": 0.55},
        {
            "training": {
                "seeds": [100],
                "approaches": {"lora_all": protocol_rates, "layernorm": protocol_rates},
            }
        },
    )
    # The sweep's publication: its choice, and the split settings it chose them on.
    (tmp_path / "docs/results/sweep").mkdir(parents=True)
    (tmp_path / "docs/results/sweep/chosen.yaml").write_text(
        yaml.safe_dump(
            {"lora_all": {"learning_rate": 5e-4}, "layernorm": {"learning_rate": 2.5e-3}}
        )
    )
    (tmp_path / "docs/results/sweep/config.yaml").write_text(
        yaml.safe_dump({"splits": {"exclude_reference": True, "reference": {"enabled": False}}})
    )
    publication_on_the_reference_split(
        tmp_path / "docs/results/rates",
        {
            "LoRA, all linear layers (seed 100)": 0.80,
            "LoRA, all linear layers (seed 101)": 0.79,
            "LoRA, all linear layers (seed 102)": 0.81,
            "Normalization layers only (seed 100)": 0.70,
            "Normalization layers only (seed 101)": 0.72,
            "Normalization layers only (seed 102)": 0.74,
        },
        rates_config
        or {
            "training": {
                "seeds": [100, 101, 102],
                "learning_rates_from": "docs/results/sweep/chosen.yaml",
            }
        },
    )
    page = tmp_path / "docs/reference.md"
    page.write_text(
        "Before.\n\n<!-- rate-gap:begin docs/results/protocol docs/results/rates -->\nstale\n"
        "<!-- rate-gap:end -->\nAfter.\n"
    )
    return page


def test_adaptune_docs_writes_the_learning_rates_share_of_the_reference_gap(tmp_path):
    """Per approach: both rates, the shared seed's pair, every seed at the new rate, and for the
    reference study's system the share of its gap to 0.84 that the rate closes."""
    page = rate_gap_repo(tmp_path)
    assert main(["docs", "--repo", str(tmp_path)]) == 0
    text = page.read_text()
    assert text.startswith("Before.\n") and text.endswith("<!-- rate-gap:end -->\nAfter.\n")
    assert "stale" not in text
    assert (
        "| LoRA, all linear layers | 0.0001 → 0.0005 | seed 100: 0.685 → 0.800 | 0.800, 0.790, "
        "0.810 (seeds 100, 101, 102; mean 0.800) | +0.115 |" in text
    )
    assert "| Normalization layers only | 0.0001 → 0.0025 | seed 100: 0.550 → 0.700 |" in text
    # (0.800 - 0.685) / (0.84 - 0.685) of the gap, from 3 seeds against one.
    assert "so the rate accounts for 74 % of the gap of 0.155" in text
    assert "mean of 3 seeds, 0.790–0.810" in text and "about ±0.06" in text
    assert "[docs/results/rates](results/rates/)" in text
    # The tweets scored here were kept out of the sweep that chose the rates.
    assert "pool without the reference study's tweets" in text and "none of these" in text
    assert main(["docs", "--repo", str(tmp_path)]) == 0  # a second run changes nothing
    assert page.read_text() == text


def test_a_rate_gap_block_says_when_its_tweets_may_have_chosen_the_rates(tmp_path):
    import yaml

    for splits, said in (
        ({"exclude_reference": False}, "a pool that may hold some of these 200 tweets"),
        ({"reference": {"enabled": True}}, "these accuracies are not held out"),
        (None, "not recorded beside it"),
    ):
        root = tmp_path / said.split()[0]
        page = rate_gap_repo(root)
        config = root / "docs/results/sweep/config.yaml"
        if splits is None:
            config.unlink()
        else:
            config.write_text(yaml.safe_dump({"splits": splits}))
        assert main(["docs", "--repo", str(root)]) == 0
        assert said in page.read_text(), said


def test_a_rate_gap_block_names_what_its_publications_lack(tmp_path, capsys):
    rate_gap_repo(tmp_path, rates_config={"training": {"seeds": [100, 101, 102]}})
    assert main(["docs", "--repo", str(tmp_path)]) != 0
    error = capsys.readouterr().err
    assert "docs/reference.md" in error and "training.learning_rates_from" in error
    assert "docs/results/rates/config.yaml" in error

    rate_gap_repo(tmp_path / "again")
    rows = tmp_path / "again/docs/results/rates/reference_split.csv"
    rows.write_text(
        rows.read_text().replace("LoRA, all linear layers (seed 102)", "LoRA, all linear layers")
    )
    assert main(["docs", "--repo", str(tmp_path / "again")]) != 0
    error = capsys.readouterr().err
    assert "'LoRA, all linear layers' names no seed" in error and "[100, 101, 102]" in error


# A time or speed in prose: seconds to hours, FLOP rates, throughputs, and decimal ratios.
MEASURED = re.compile(
    r"\b\d[\d,]*(?:\.\d+)?(?:–\d[\d,]*(?:\.\d+)?)? ?"
    r"(?:ms|s|min|h|seconds|minutes|hours|GFLOP/s|TFLOP|samples/s|prompts/s|s/step)(?![\w/])"
    r"|\b\d+\.\d+x\b"
)
# Numbers the code or a plan sets, not measurements: the precision and compile decisions'
# margin, the suite's budget, the time set for the decisive study.
SET_NOT_MEASURED = {"1.10x", "4 minutes", "8 hours"}


def hand_written_measurements(text: str) -> list[str]:
    """The times and speeds a page states outside its generated blocks and its code."""
    text = docs.without_generated_blocks(text)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return [m for m in MEASURED.findall(text) if m not in SET_NOT_MEASURED]


def test_no_time_or_speed_in_docs_is_typed_by_hand():
    """Measurements live in the generated cost tables, the publications and bench/README.md
    (the benchmarks' own record, each table with its CPU); a page links them."""
    found = {
        page.name: hand_written_measurements(page.read_text())
        for page in sorted((REPO / "docs").glob("*.md"))
    }
    assert not {page: seen for page, seen in found.items() if seen}


def test_the_measurement_check_sees_a_typed_time():
    assert hand_written_measurements("it took 49.6 min and ran at 1.22x, 3.59 samples/s") == [
        "49.6 min",
        "1.22x",
        "3.59 samples/s",
    ]
    assert hand_written_measurements("`--steps 3` at the 1.10x margin, 5 seeds") == []
