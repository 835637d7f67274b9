"""digits: source-task pretraining on scikit-learn's digits, the offline example of `weights=pretrain:`.

`small_cnn` is trained on digits 0-4, its weights saved to a file and loaded
through the same `weights=PATH` route as ImageNet files, then transferred to
digits 5-9 with 20 labels per class, against the same network from scratch
for the same epochs. A test of the pipeline at toy scale, not a
demonstration that transfer pays: on 8x8 digits the small network learns
from 100 labels by itself.

  python experiments/train.py --dataset=digits_5_9
"""

SETTINGS = {
    "dataset": "digits_5_9",
    "backbone": "small_cnn",
    "weights": "pretrain:digits_0_4",
    "flip": "none",
    "rotation_degrees": 0.0,
    "zoom": 0.0,
    "feature_cache_augment_passes": 1,
    "frozen_epochs": 20,
    "fine_tune_epochs": 20,
    "fine_tune_learning_rate": 1e-4,
    "fine_tune_warmup": 0.0,
    "unfreeze": "all",
    "layer_rate_bottom": 1.0,
    "fine_tune_min_steps": 0,
    "lr_schedule": "constant",
    "compare_scratch": True,
    "scratch_budget": "epochs",
}
