"""The data stage: the dataset's splits (sampled, balanced, checked) and the prompts made from
them (zero-shot under a template, and few-shot).

splits   read the dataset, sample and balance train/val/test, the reference split
prompts  templates, prompt/completion records, few-shot demonstrations
"""
