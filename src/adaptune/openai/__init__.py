"""The OpenAI stage (optional; it costs money): fine-tune models of an OpenAI-compatible endpoint
on the training prompts, and evaluate those and chat models on the evaluation splits.

Modules, in the order a job uses them:
  settings    the `openai` config section
  client      the key, the endpoint, the official client, and keeping the key out of every file
  models      what the endpoint still serves, and which answers are refusals
  formats     how an example is shown to a model, and token counts
  finetune    one fine-tuning job per model, created exactly once
  answers     reading a label out of an answer
  evaluation  asking a system about every prompt; predictions.csv and metrics.json
  outcome     the outputs of a system that could not run

This package is `adaptune.openai`; every module imports the official client as `import openai`,
which (absolute imports) is never this package.
"""
