"""The workflow itself, run by the real snakemake: planning, linting, config validation, and the
data and prompt stages end to end."""

import hashlib

import pytest

from conftest import (
    REPO,
    job_stats,
    jobs_per_approach,
    refusal,
    tiny_pipeline_config,
    write_raw_csv,
    write_reference_csvs,
)

PROMPTS = "results/prompts/instruction/train.jsonl"


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_lint_is_clean(pipeline):
    result = pipeline.run("--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dry_run_plans_the_whole_chain(default_plan):
    plan = set(job_stats(default_plan.stdout))
    assert plan >= {
        "sample_splits",
        "format_prompts",
        "prepare_model",
        "train",
        "evaluate",
        "fewshot",
        "baseline_tfidf",
        "report",
    }, plan
    assert not {rule for rule in plan if rule.startswith("openai")}


def test_the_grid_plans_one_training_and_evaluation_per_cell(pipeline):
    grid = {
        "training": {
            "styles": ["instruction", "raw"],
            "seeds": [1, 2, 3],
            "quantizations": ["8bit", "none"],
        }
    }
    jobs = jobs_per_approach(pipeline.run("-n", config=grid).stdout)
    for approach in ("layernorm", "lora_attention", "lora_all"):
        assert jobs[f"train_{approach}"] == 2 * 3 * 2
    assert jobs["evaluate"] == 3 * 2 * 3 * 2
    assert jobs["report"] == 1


REFUSED = [
    ({"splits": {"train": -5}}, "-5 is less than the minimum"),
    ({"splits": {"train": "many"}}, "'many' is not of type 'integer'"),
    ({"training": {"approaches": {"prefix_tuning": {"enabled": True}}}}, "prefix_tuning"),
    ({"training": {"styles": ["poetry"]}}, "training.styles: unknown prompt style 'poetry'"),
    ({"training": {"quantizations": ["3bit"]}}, "'3bit' is not one of"),
    (
        {
            "evaluation": {
                "fewshot": {
                    "demonstrations": "fixed",
                    "k": [0, 3],
                    "fixed_demonstrations": [{"text": "hi", "label": "hate"}],
                }
            }
        },
        "evaluation.fewshot.k: [3] with demonstrations: fixed; expected 0 or 1",
    ),
    ({"model": "gpt-5"}, "model: unknown model 'gpt-5'"),
]


def test_the_tiny_config_and_every_shipped_config_are_accepted():
    from conftest import deep_update
    import yaml

    tiny = tiny_pipeline_config(REPO / "no-model")
    assert refusal(tiny) == ""
    for configfile in sorted((REPO / "configs").glob("*.yaml")):
        assert refusal(deep_update(tiny, yaml.safe_load(configfile.read_text()))) == "", (
            configfile.name
        )


@pytest.mark.parametrize("overrides, message", REFUSED)
def test_bad_config_is_refused_with_the_key(overrides, message):
    from conftest import deep_update

    assert message in refusal(deep_update(tiny_pipeline_config(REPO / "no-model"), overrides))


@pytest.mark.parametrize(
    "overrides, message", [REFUSED[0], REFUSED[-1]], ids=["schema", "cross-key"]
)
def test_bad_config_stops_snakemake_before_any_job(pipeline, overrides, message):
    result = pipeline.run(PROMPTS, config=overrides, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not pipeline.path("results").exists()


def test_unknown_prompt_style_target_is_refused(pipeline):
    result = pipeline.run("results/prompts/poetry/train.jsonl", check=False)
    assert result.returncode != 0
    assert "unknown prompt style 'poetry'" in result.stdout + result.stderr
    assert not pipeline.path("results").exists()


def test_bad_dataset_is_refused_and_leaves_no_split(pipeline):
    """The wiring: sample_splits stops on a bad raw file, names it, writes no split and keeps the
    user's file (each way a file can be bad is tested in process by test_data.py)."""
    pipeline.path("data/labeled_data.csv").write_text(
        ",count,hate_speech,offensive_language,neither,class,tweet\n0,3,0,0,3,7,hi\n"
    )
    result = pipeline.run(PROMPTS, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "class '7' is not one of 0, 1, 2" in output and "labeled_data.csv" in output
    assert not list(pipeline.path("results").rglob("*.csv"))
    assert pipeline.path("data/labeled_data.csv").exists()  # the user's file is never deleted


def test_split_larger_than_a_class_left_after_the_reference_is_refused(tmp_path):
    from adaptune.data.splits import DataError, SplitSettings, make_splits

    raw = write_raw_csv(tmp_path / "labeled_data.csv", per_class=40)
    reference = write_reference_csvs(tmp_path)
    # 40 written, 4 of them in the reference split
    with pytest.raises(DataError, match="class 'hate' has 36 distinct tweets, but the splits need"):
        make_splits(
            raw,
            ["hate", "offensive", "neutral"],
            SplitSettings(train=150, val=12, test=12, exclude_reference=True),
            reference,
        )


@pytest.mark.parametrize(
    "configfile, expected",
    [
        ("seeds.yaml", {"train_lora_all": 5, "evaluate": 15}),
        ("quantization.yaml", {"train_lora_all": 3, "evaluate": 9}),
        (
            "reference.yaml",
            {
                "train_layernorm": 1,
                "train_lora_attention": 1,
                "train_lora_all": 1,
                "evaluate": 3,
                "fewshot": 2,
            },
        ),
        ("gpt-j-6b.yaml", {"train_lora_all": 1}),
        (
            "sweep.yaml",
            {
                "sweep_layernorm": 6,
                "sweep_lora_attention": 6,
                "sweep_lora_all": 6,
                "sweep_summary": 1,
            },
        ),
        ("paired.yaml", {"train_layernorm": 1, "train_lora_all": 1, "evaluate": 3}),
        (
            "tuned.yaml",
            {
                "sweep_layernorm": 4,
                "sweep_lora_attention": 4,
                "sweep_lora_all": 4,
                "sweep_summary": 1,
                "train_layernorm": 5,
                "train_lora_all": 5,
                "evaluate": 15,
            },
        ),
    ],
)
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
    jobs = jobs_per_approach(pipeline.run("-n", "--configfile", str(layered)).stdout)
    for rule, count in expected.items():
        assert jobs.get(rule) == count, (rule, jobs)


def test_split_seeds_add_cells_trained_on_other_draws_of_the_train_split(pipeline):
    """training.split_seeds: one more cell per draw, named seed<seed>-split<draw>, trained on its
    own train prompts; val and test stay the study's, and the draw shares no tweet with them."""
    import pandas as pd

    from adaptune.data.splits import text_key

    config = {"training": {"split_seeds": [11, pipeline.config["splits"]["seed"]]}}
    plan = pipeline.run("-n", config=config).stdout
    jobs = jobs_per_approach(plan)
    assert jobs["sample_train_split"] == 1  # the study's own seed is no extra draw
    assert jobs["train_lora_all"] == 2 and jobs["evaluate"] == 6
    assert "results/train/tiny-gptj/lora_all/instruction/8bit/seed42-split11/summary.json" in plan
    assert "results/prompts/instruction/train-split11.jsonl" in plan
    pipeline.run("results/prompts/instruction/train-split11.jsonl", config=config)
    read = lambda name: pd.read_csv(
        pipeline.path(f"results/splits/{name}.csv"), keep_default_na=False
    )
    drawn, own = read("train-split11"), read("train")
    assert len(drawn) == len(own) and set(drawn["id"]) != set(own["id"])
    held = set(pd.concat([read("val"), read("test")])["text"].map(text_key))
    assert not set(drawn["text"].map(text_key)) & held
