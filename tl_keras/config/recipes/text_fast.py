"""text_fast: the text recipe cut for a CPU: at most 64 tokens per text and one epoch of fine-tuning.

  python experiments/train.py --recipe=text_fast --text_file=train.tsv --backbone=PATH/all-MiniLM-L6-v2
"""

from tl_keras.config.recipes.text import SETTINGS as _TEXT

SETTINGS = {**_TEXT, "fine_tune_epochs": 1, "max_sequence_length": 64}
