"""tutorial: the TensorFlow "Transfer learning and fine-tuning" tutorial's settings, for comparison.

MobileNetV2 1.0 at 160 px, flip + rotation 0.2 (72 degrees), dropout 0.2;
10 frozen epochs of plain `fit` on images at Adam 1e-4, then layers 100+
unfrozen for 10 epochs at RMSprop 1e-5; no early stopping. (tl_keras still
keeps the better phase's best epoch, where the tutorial reports the last.)

  python experiments/train.py --recipe=tutorial --image_dir=DATA/train --validation_dir=DATA/validation --weights=PATH
  python benchmarks/reproduce_tutorial.py

Measured on cats_and_dogs_filtered (2 CPU cores, seed 0): 0.975 best validation,
0.960 test, 919 s of training (benchmarks/results/reproduce_tutorial.json).
On the bundled flowers at 40 labels per class (`python benchmarks/recipes.py
--recipes=tutorial --datasets=flowers --seeds=0,1,2`): 0.655 +- 0.025 test,
against 0.842 +- 0.021 for a converged linear probe on the same features;
129 s of training. Through `benchmarks/recipes.py --datasets=cats_vs_dogs
--seeds=0,1,2` (a 200-image test split): 0.962 +- 0.006 test (0.970 / 0.955
/ 0.960), 668 s of training (573 s on seed 0 in an earlier session, 715 s on
the others).
"""

SETTINGS = {
    "backbone": "mobilenet_v2",
    "alpha": 1.0,
    "image_size": 160,
    "flip": "horizontal",
    "rotation_degrees": 72.0,
    "dropout": 0.2,
    "batch_size": 32,
    "frozen_epochs": 10,
    "optimizer": "adam",
    "learning_rate": 1e-4,
    "fine_tune_epochs": 10,
    "fine_tune_optimizer": "rmsprop",
    "fine_tune_learning_rate": 1e-5,
    "fine_tune_warmup": 0.0,
    "unfreeze": "from:100",
    "layer_rate_bottom": 1.0,
    "fine_tune_min_steps": 0,
    "zoom": 0.0,
    "lr_schedule": "constant",
    "feature_cache": "off",
    "head_init": "random",
    "early_stopping_patience": 0,
    "overfit_patience": 0,
}
