"""Tiny causal LMs built on the spot (random weights, a byte-level BPE tokenizer trained on a
few sentences), saved in Hugging Face format, so tests run the real loading, quantization and
training code offline in seconds."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "Classify the tweet as one of: hate, offensive, neutral.",
    "Tweet: I love sunny days at the beach with friends",
    "Tweet: you are a stupid idiot and I hate you",
    "Tweet: those people should all go away forever",
    "Category: hate",
    "Category: offensive",
    "Category: neutral",
    " hate offensive neutral hate offensive neutral",
    "the a an and or but of to in on at for with from by this that these those",
    "good bad happy sad love angry nice terrible great awful weather game music",
    "0 1 2 3 4 5 6 7 8 9 ### : . , ! ? @ # & ; RT",
]


def build_tokenizer(directory: Path, vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=512,
    )
    fast.save_pretrained(directory)
    return fast


# One transformer block: it holds every kind of layer an approach trains (attention, MLP, norms),
# and each further block adds compile and step time to every test that trains.
LAYERS = 1


def build_tiny_model(
    directory: str | Path, arch: str = "gptj", seed: int = 0, layers: int = LAYERS
) -> Path:
    """Write a tiny `arch` ("gptj" or "llama") model of `layers` blocks and its tokenizer to
    `directory`."""
    import torch
    from transformers import AutoModelForCausalLM, GPTJConfig, LlamaConfig

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(directory)
    vocab = len(tokenizer)
    special = dict(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if arch == "gptj":
        config = GPTJConfig(
            vocab_size=vocab,
            n_positions=256,
            n_embd=64,
            n_layer=layers,
            n_head=4,
            rotary_dim=8,
            **special,
        )
    elif arch == "llama":
        config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            tie_word_embeddings=True,
            **special,
        )
    else:
        raise ValueError(f"unknown tiny architecture {arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(directory)
    return directory
