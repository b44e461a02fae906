"""The systems of a study named in one place: names are paths with one segment per grid factor,
labels name only the factors that vary, colours are shared by a group's seeds, and the module
imports without pandas or torch (the Snakefile imports it)."""

import subprocess
import sys

import pytest
import yaml

from adaptune.core.config import with_defaults
from adaptune.core.names import APPROACHES
from adaptune.core.systems import System, colours, group_systems, labels, study_systems
from conftest import REPO


def config(**training):
    base = with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))
    base["training"].update(training)
    return base


def test_the_default_study_is_three_approaches_by_two_styles_plus_the_others():
    systems = study_systems(config())
    finetuned = [s for s in systems if s.finetuned and s.ran]
    assert {(s.method, s.style) for s in finetuned} == {
        (a, style)
        for a in ("layernorm", "lora_attention", "lora_all")
        for style in ("instruction", "raw")
    }
    # The classification head is in the grid, off by default, with the key that turned it off.
    off = {s.reason for s in systems if s.method == "head"}
    assert off == {"training.approaches.head.enabled is false"}
    names = [s.name for s in systems]
    assert len(set(names)) == len(names)
    assert "smollm2-135m/lora_all/raw/none/seed42" in names
    openai = config()["openai"]
    assert {
        "smollm2-135m/fewshot-k0",
        "smollm2-135m/fewshot-k3",
        "baseline/tfidf",
        f"openai/ft-{openai['finetune_models'][0]}",
        f"openai/{openai['chat_models'][0]}-k3",
    } <= set(names)
    assert all(not s.ran for s in systems if s.method.startswith("openai"))
    assert all(s.ran for s in systems if not s.method.startswith("openai") and s.method != "head")


def test_every_factor_is_a_path_segment_and_the_group_drops_only_the_seed():
    cell = System("lora_all", "m", "raw", "4bit", 43)
    assert cell.eval_dir == "results/eval/m/lora_all/raw/4bit/seed43"
    assert cell.train_dir == "results/train/m/lora_all/raw/4bit/seed43"
    assert cell.group == "m/lora_all/raw/4bit"
    assert System.from_block(cell.block()) == cell
    assert System("fewshot", "m", "instruction", "8bit", k=3).train_dir is None


def test_a_grid_of_seeds_and_quantizations_gives_one_system_per_cell():
    systems = [
        s
        for s in study_systems(config(seeds=[1, 2, 3], quantizations=["none", "8bit"]))
        if s.finetuned
    ]
    assert len(systems) == len(APPROACHES) * 2 * 2 * 3
    groups = group_systems(systems)
    assert len(groups) == len(APPROACHES) * 2 * 2
    assert all(len(members) == 3 for members in groups.values())


def test_labels_name_only_the_factors_that_vary_and_are_unique():
    one = study_systems(config(styles=["instruction"]))
    shown = labels(one)
    assert shown["smollm2-135m/lora_all/instruction/none/seed42"] == "LoRA, all linear layers"
    many = study_systems(config(seeds=[1, 2], quantizations=["8bit", "4bit"]))
    shown = labels(many)
    assert (
        shown["smollm2-135m/layernorm/raw/4bit/seed2"]
        == "Normalization layers only (raw prompt, 4-bit NF4, seed 2)"
    )
    assert len(set(shown.values())) == len(shown)
    grouped = labels(many, with_seed=False)
    assert (
        grouped["smollm2-135m/layernorm/raw/4bit"]
        == "Normalization layers only (raw prompt, 4-bit NF4)"
    )


def test_colours_are_one_hue_per_kind_shaded_per_group_and_shared_by_seeds():
    systems = study_systems(config(seeds=[1, 2]))
    palette = colours(systems)
    assert set(palette) == {s.group for s in systems}
    lora_all = [palette[s.group] for s in systems if s.method == "lora_all"]
    assert len(set(lora_all)) == 2  # two styles, seeds share
    assert all(c.startswith("#") and len(c) == 7 for c in palette.values())


def test_a_bad_system_is_refused():
    with pytest.raises(ValueError, match="method 'prefix'"):
        System("prefix", "m")
    with pytest.raises(ValueError, match="needs style, quantization and seed"):
        System("lora_all", "m", "raw")


def test_imports_without_pandas_or_torch():
    code = (
        "import sys; import adaptune.core.systems; "
        "print(sorted(m for m in ('pandas', 'torch', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src")},
    )
    assert result.stdout.strip() == "[]"


def test_another_train_draw_is_one_more_run_of_its_group():
    from types import SimpleNamespace

    from adaptune.core.systems import parse_seed_segment

    own = config(split_seeds=[42, 7])["splits"]["seed"]
    assert own == 42  # the study's own draw is no extra cell
    cells = [
        s
        for s in study_systems(config(split_seeds=[42, 7]))
        if s.method == "lora_all" and s.style == "raw"
    ]
    assert [s.name for s in cells] == [
        "smollm2-135m/lora_all/raw/none/seed42",
        "smollm2-135m/lora_all/raw/none/seed42-split7",
    ]
    drawn = cells[1]
    assert drawn.group == cells[0].group and drawn.split_seed == 7 and drawn.seed == 42
    assert System.from_block(drawn.block()) == drawn
    wildcards = SimpleNamespace(
        approach="lora_all",
        model="smollm2-135m",
        style="raw",
        quantization="none",
        seed="42-split7",
    )
    assert System.finetuned_cell(wildcards) == drawn and parse_seed_segment("43") == (43, None)
    shown = labels(cells)
    assert len(set(shown.values())) == 2 and "train split 7" in shown[drawn.name]


def test_a_study_cut_to_its_budget_leaves_out_8bit_seeds_and_an_approachs_styles():
    """configs/decisive.yaml's cuts: the 8-bit cells at 3 of 5 seeds and the instruction prompt
    only, the classification head at the instruction prompt only."""
    study = config(
        seeds=[42, 43, 44, 45, 46],
        quantizations=["none", "8bit"],
        quantization_styles={"8bit": ["instruction"]},
        quantization_seeds={"8bit": [42, 43, 44]},
    )
    study["training"]["approaches"]["head"].update(enabled=True, styles=["instruction"])
    cells = [s for s in study_systems(study) if s.finetuned]
    eight = [s for s in cells if s.quantization == "8bit"]
    assert {s.seed for s in eight} == {42, 43, 44} and {s.style for s in eight} == {"instruction"}
    assert len(eight) == len(APPROACHES) * 3
    head = [s for s in cells if s.method == "head"]
    assert {(s.style, s.quantization) for s in head} == {
        ("instruction", "none"),
        ("instruction", "8bit"),
    }
    others = [s for s in cells if s.quantization == "none" and s.method != "head"]
    assert len(others) == (len(APPROACHES) - 1) * 2 * 5
