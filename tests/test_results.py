"""The README's results section is generated from a published study's files (docs/results/),
never typed: regenerating it from the folder it names gives exactly what the README holds."""

from pathlib import Path

from adaptune.publish import current_section, published_studies, section

REPO = Path(__file__).resolve().parents[1]


def test_readme_results_section_is_what_its_published_files_generate():
    current, folder = current_section(REPO / "README.md")
    assert current == section(folder, REPO), (
        "README.md's results section differs from its published files; regenerate it with "
        f"`adaptune readme {folder or 'none'}`")
    published = published_studies(REPO)
    if published:
        assert folder in published, f"README.md shows {folder or 'no study'}; published: {published}"
