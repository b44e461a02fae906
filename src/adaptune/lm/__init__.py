"""The language model: loading a base (GGUF, transformers, 8-bit or 4-bit), turning prompts
into token batches, and scoring each label's completion.

models         load and prepare a base model
encoding       prompts and completions as token ids; the left-padded batch layout
scoring        per-label log-likelihoods of a prompt
probabilities  label probabilities from those scores (numpy only)
"""
