"""text: a BERT-family encoder, its head fitted on cached sentence vectors, then three epochs of fine-tuning.

What `--recipe=auto` picks for `--text_file` / `--text_dir`. Phase 1 fits
the softmax head to convergence (logistic regression) on the encoder's
pooled outputs, cached once; phase 2 fine-tunes every layer with AdamW at
1e-4 for three epochs, 10% warmup then cosine decay, and layer-wise rates
from 0.5x at the embeddings to 1x at the top block; the better phase is
kept. On 2,000 movie-review sentences with all-MiniLM-L6-v2 (seed 0), 5e-5
for two epochs reached 0.770 test accuracy and 1e-4 for three 0.805
(`benchmarks/results/text.json`, rows text and text_lr1e-4_e3). Online,
`--backbone` defaults to keras-hub's `bert_base_en_uncased`; offline, pass a
local checkpoint folder.

  python experiments/train.py --text_file=train.tsv --test_file=test.tsv --backbone=PATH/all-MiniLM-L6-v2
  python benchmarks/text.py

Measured by the second command: see docs/text.md.
"""

SETTINGS = {
    "backbone": "keras_hub:bert_base_en_uncased",
    "weights": "",
    "pooling": "auto",
    "dropout": 0.1,
    "batch_size": 32,
    "frozen_epochs": 50,
    "head_init": "logistic",
    "fine_tune_epochs": 3,
    "fine_tune_min_steps": 0,
    "fine_tune_learning_rate": 1e-4,
    "fine_tune_optimizer": "adamw",
    "fine_tune_warmup": 0.1,
    "lr_schedule": "cosine",
    "layer_rate_bottom": 0.5,
    "unfreeze": "all",
    "compare_scratch": False,
}
