"""embedded: what `python experiments/train.py` runs with no flags, offline, on what ships in the package.

500 real flower photos (5 classes, CC BY 2.0, tl_keras/assets/flowers) and
ImageNet MobileNetV2 alpha 0.35 weights (tl_keras/assets/weights), at
160 px, with 40 labels per class (20 more per class validate, 40 test);
the default recipe otherwise.
The same network is trained from random weights for the same wall time.

  python experiments/train.py
  python benchmarks/recipes.py --recipes=embedded --seeds=0,1,2

Measured: see the README's embedded-default table (benchmarks/results/recipes.json).
"""

SETTINGS = {
    "dataset": "flowers",
    "backbone": "mobilenet_v2",
    "alpha": 0.35,
    "image_size": 160,
    "compare_scratch": True,
    "scratch_budget": "time",
}
