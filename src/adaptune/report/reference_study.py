"""The reference study's published figures (github.com/vetka925/gpt-j-8bit-lightning-finetune):
GPT-J-6B in 8-bit, PyTorch Lightning, 1,000 balanced training tweets, scored on its own
200-tweet validation split. Facts only, read by the report and the README's reference section."""

# Its published accuracies on its own 200-tweet validation split, as published (strings, so
# "0.50" stays "0.50"), each under the rule it was scored by. Shown apart from our rows, never
# ranked with them.
REFERENCE_SOURCE = "github.com/vetka925/gpt-j-8bit-lightning-finetune"
REFERENCE_SCORING = {
    "vocabulary": "Accuracy: argmax over the whole vocabulary",
    "label_tokens": "Accuracy: argmax over the 3 label tokens",
    "answer": "Accuracy: lowercased answer equals the label",
}
REFERENCE_RESULTS = (
    {
        "system": "LoRA, all linear layers",
        "model": "GPT-J-6B (8-bit)",
        "accuracy": "0.84",
        "scoring": "vocabulary",
    },
    {
        "system": "3-shot prompting",
        "model": "GPT-J-6B (8-bit)",
        "accuracy": "0.415",
        "scoring": "label_tokens",
    },
    {
        "system": "ChatGPT, zero-shot",
        "model": "ChatGPT (OpenAI)",
        "accuracy": "0.50",
        "scoring": "answer",
    },
)
REFERENCE_SPLIT = "its 200-tweet validation split"
# That split is not balanced: always answering its majority class scores 78/200.
REFERENCE_VAL_COUNTS = {"hate": 78, "offensive": 56, "neutral": 66}
REFERENCE_MAJORITY = ("hate", 78 / 200)
