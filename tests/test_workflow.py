"""The workflow itself, run by the real snakemake: planning, linting, config validation, and the
data and prompt stages end to end."""

import hashlib
import json

import pandas as pd
import pytest

from adaptune.systems import System
from conftest import REPO, write_raw_csv, write_reference_csvs

PROMPTS = "results/prompts/instruction/train.jsonl"


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_lint_is_clean(pipeline):
    result = pipeline.run("--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def planned_jobs(result) -> dict[str, int]:
    """Jobs per rule from the job-stats table of a dry run."""
    rows = (line.split() for line in (result.stdout + result.stderr).splitlines())
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit() and row[0] != "total"}


def planned_rules(result) -> set[str]:
    """Rule names from the job-stats table of a dry run."""
    return set(planned_jobs(result))


def test_dry_run_plans_the_whole_chain(pipeline):
    plan = planned_rules(pipeline.run("-n", "--quiet", "rules"))
    assert plan >= {"sample_splits", "format_prompts", "prepare_model", "train_layernorm",
                    "train_lora_attention", "train_lora_all", "evaluate", "fewshot", "baseline_tfidf",
                    "report"}, plan
    assert not {rule for rule in plan if rule.startswith("openai")}


def test_the_grid_plans_one_training_and_evaluation_per_cell(pipeline):
    grid = {"training": {"styles": ["instruction", "raw"], "seeds": [1, 2, 3],
                         "quantizations": ["8bit", "none"]}}
    jobs = planned_jobs(pipeline.run("-n", "--quiet", "rules", config=grid))
    for approach in ("layernorm", "lora_attention", "lora_all"):
        assert jobs[f"train_{approach}"] == 2 * 3 * 2
    assert jobs["evaluate"] == 3 * 2 * 3 * 2
    assert jobs["report"] == 1


@pytest.mark.slow
def test_changing_one_style_or_adding_a_seed_reruns_only_those_cells(pipeline):
    """Trained cells of one approach (two styles x two seeds); then a new raw template plans the
    raw cells only, and a third seed plans that seed's cells only."""
    config = {"training": {"styles": ["instruction", "raw"], "seeds": [1, 2], "approaches": {
        "lora_attention": {"enabled": False}, "lora_all": {"enabled": False}}}}

    def cells(styles, seeds):
        return [f"{System('layernorm', 'tiny-gptj', style, '8bit', seed).train_dir}/summary.json"
                for style in styles for seed in seeds]

    trained = cells(["instruction", "raw"], [1, 2])
    pipeline.run(*trained, config=config)
    assert planned_jobs(pipeline.run(*trained, "-n", "--quiet", "rules", config=config)) == {}

    new_raw = {**config, "prompts": {"templates": {"instruction": pipeline.config["prompts"]["templates"]
                                                   ["instruction"], "raw": "{text}\n=>"}}}
    jobs = planned_jobs(pipeline.run(*trained, "-n", "--quiet", "rules", config=new_raw))
    assert jobs == {"format_prompts": 2, "train_layernorm": 2}  # raw train and val prompts
    plan = pipeline.run(*trained, "-n", config=new_raw)
    outputs = [line for line in plan.stdout.splitlines() if line.strip().startswith("output:")]
    assert any("/raw/8bit/seed1/" in line for line in outputs) and any("/raw/8bit/seed2/" in line for line in outputs)
    assert not any("instruction" in line for line in outputs)

    three_seeds = {"training": {**config["training"], "seeds": [1, 2, 3]}}
    jobs = planned_jobs(pipeline.run(*cells(["instruction", "raw"], [1, 2, 3]), "-n", "--quiet", "rules",
                                     config=three_seeds))
    assert jobs == {"train_layernorm": 2}


def test_prompts_from_a_placed_dataset_are_balanced_and_reproducible(pipeline, tmp_path):
    pipeline.run(PROMPTS)
    records = [json.loads(line) for line in pipeline.path(PROMPTS).read_text().splitlines()]
    assert len(records) == 24
    assert {r["label"] for r in records} == {"hate", "offensive", "neutral"}
    assert all(r["prompt"].endswith("Category:") and r["completion"] == " " + r["label"] for r in records)
    splits = {n: pipeline.path(f"results/splits/{n}.csv").read_text().splitlines()[1:] for n in ("train", "val", "test")}
    assert not (set(splits["train"]) & set(splits["val"]) or set(splits["train"]) & set(splits["test"]))
    # The reference split's tweets (written with their HTML entities) are in no split.
    reference = {line.split(",", 1)[1].strip('"').replace("&amp;", "&")
                 for part in ("train", "val")
                 for line in pipeline.path(f"data/reference_{part}.csv").read_text().splitlines()[1:]}
    for name in ("train", "val", "test"):
        texts = set(pd.read_csv(pipeline.path(f"results/splits/{name}.csv"))["text"])
        assert len(texts) > 0 and not texts & reference

    # The same config in a fresh directory gives the same bytes.
    from conftest import Pipeline
    again = Pipeline(tmp_path / "again", pipeline.config)
    write_raw_csv(again.path("data/labeled_data.csv"), per_class=40)
    write_reference_csvs(again.path("data"))
    again.run(PROMPTS)
    for relative in (PROMPTS, "results/splits/val.csv", "results/splits/test.csv"):
        assert digest(pipeline.path(relative)) == digest(again.path(relative))


@pytest.mark.parametrize("overrides, message", [
    ({"splits": {"train": -5}}, "-5 is less than the minimum"),
    ({"splits": {"train": "many"}}, "'many' is not of type 'integer'"),
    ({"training": {"approaches": {"prefix_tuning": {"enabled": True}}}}, "prefix_tuning"),
    ({"training": {"styles": ["poetry"]}}, "training.styles: unknown prompt style 'poetry'"),
    ({"training": {"quantizations": ["3bit"]}}, "'3bit' is not one of"),
    ({"evaluation": {"fewshot": {"demonstrations": "fixed", "k": [0, 3],
                                 "fixed_demonstrations": [{"text": "hi", "label": "hate"}]}}},
     "evaluation.fewshot.k: [3] with demonstrations: fixed; expected 0 or 1"),
    ({"model": "gpt-5"}, "model: unknown model 'gpt-5'"),
])
def test_bad_config_is_refused_before_any_job(pipeline, overrides, message):
    result = pipeline.run(PROMPTS, config=overrides, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not pipeline.path("results").exists()


def test_unknown_prompt_style_target_is_refused(pipeline):
    result = pipeline.run("results/prompts/poetry/train.jsonl", check=False)
    assert result.returncode != 0
    assert "unknown prompt style 'poetry'" in result.stdout + result.stderr
    assert not pipeline.path("results").exists()


BAD_RAW = {
    "no class column": (",count,hate_speech,offensive_language,neither,tweet\n0,3,0,0,3,hi\n", "missing column(s) class"),
    "class 7": (",count,hate_speech,offensive_language,neither,class,tweet\n0,3,0,0,3,7,hi\n", "class '7' is not one of 0, 1, 2"),
    "empty": ("", "the file is empty"),
    "binary": (bytes(range(256)).decode("latin-1") * 4, "binary file"),
}


@pytest.mark.parametrize("case", sorted(BAD_RAW))
def test_bad_dataset_is_refused_and_leaves_no_split(pipeline, case):
    content, message = BAD_RAW[case]
    pipeline.path("data/labeled_data.csv").write_text(content, encoding="latin-1")
    result = pipeline.run(PROMPTS, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert message in output and "labeled_data.csv" in output
    assert not list(pipeline.path("results").rglob("*.csv"))
    assert pipeline.path("data/labeled_data.csv").exists()  # the user's file is never deleted


def test_split_larger_than_a_class_is_refused(pipeline):
    result = pipeline.run(PROMPTS, config={"splits": {"train": 150}}, check=False)
    assert result.returncode != 0
    # 40 written, 4 of them in the reference split
    assert "class 'hate' has 36 distinct tweets, but the splits need" in result.stdout + result.stderr
    assert not pipeline.path("results/splits").exists() or not list(pipeline.path("results/splits").iterdir())


@pytest.mark.parametrize("configfile, expected", [
    ("seeds.yaml", {"train_lora_all": 5, "evaluate": 15}),
    ("quantization.yaml", {"train_lora_all": 3, "evaluate": 9}),
    ("reference.yaml", {"train_layernorm": 1, "train_lora_attention": 1, "train_lora_all": 1, "evaluate": 3,
                        "fewshot": 2}),
    ("gpt-j-6b.yaml", {"train_lora_all": 1}),
    ("sweep.yaml", {"sweep_layernorm": 6, "sweep_lora_attention": 6, "sweep_lora_all": 6, "sweep_summary": 1}),
    ("tuned.yaml", {"sweep_layernorm": 4, "sweep_lora_attention": 4, "sweep_lora_all": 4, "sweep_summary": 1,
                    "train_layernorm": 5, "train_lora_all": 5, "evaluate": 15}),
])
def test_every_shipped_config_validates_and_plans_its_grid(pipeline, configfile, expected):
    """Each file of configs/ on top of the tiny config: valid against the schema, and its grid
    planned (one style in the tiny config, so cells = quantizations x seeds)."""
    import yaml

    overrides = yaml.safe_load((REPO / "configs" / configfile).read_text())
    if configfile == "gpt-j-6b.yaml":
        # the GPT-J settings on the tiny GPT-J, so that nothing is fetched
        overrides["models"] = {"gpt-j-6b": {**pipeline.config["models"]["tiny-gptj"]}}
    layered = pipeline.path("layered.yaml")
    layered.parent.mkdir(parents=True, exist_ok=True)
    from conftest import deep_update
    if configfile != "reference.yaml":
        overrides.setdefault("training", {})["styles"] = ["instruction"]
    layered.write_text(yaml.safe_dump(deep_update(pipeline.config, overrides)))
    jobs = planned_jobs(pipeline.run("-n", "--quiet", "rules", "--configfile", str(layered)))
    for rule, count in expected.items():
        assert jobs.get(rule) == count, (rule, jobs)


def test_split_seeds_add_cells_trained_on_other_draws_of_the_train_split(pipeline):
    """training.split_seeds: one more cell per draw, named seed<seed>-split<draw>, trained on its
    own train prompts; val and test stay the study's, and the draw shares no tweet with them."""
    import pandas as pd

    from adaptune.data import text_key

    config = {"training": {"split_seeds": [11, pipeline.config["splits"]["seed"]]}}
    plan = pipeline.run("-n", config=config).stdout
    jobs = planned_jobs(pipeline.run("-n", "--quiet", "rules", config=config))
    assert jobs["sample_train_split"] == 1  # the study's own seed is no extra draw
    assert jobs["train_lora_all"] == 2 and jobs["evaluate"] == 6
    assert "results/train/tiny-gptj/lora_all/instruction/8bit/seed42-split11/summary.json" in plan
    assert "results/prompts/instruction/train-split11.jsonl" in plan
    pipeline.run("results/prompts/instruction/train-split11.jsonl", config=config)
    read = lambda name: pd.read_csv(pipeline.path(f"results/splits/{name}.csv"), keep_default_na=False)
    drawn, own = read("train-split11"), read("train")
    assert len(drawn) == len(own) and set(drawn["id"]) != set(own["id"])
    held = set(pd.concat([read("val"), read("test")])["text"].map(text_key))
    assert not set(drawn["text"].map(text_key)) & held
