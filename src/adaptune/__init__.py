"""adaptune: fine-tune a quantized causal LM for text classification, and compare the ways to."""

__version__ = "0.1.0"
