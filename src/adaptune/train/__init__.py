"""The train stage: one fine-tuning run of an approach (adaptune.approaches) with Lightning.

run          settings, the run from split to saved adapter, resume from checkpoints
data         the training batches and their order
module       the LightningModules (completion loss, classification head) and a timer
schedule     epoch seeds, the warm-up-stable-decay rate and the sweep's decay branches
step_timing  the hardware rule's timed training steps
export       a trained adapter as a merged transformers folder
"""
