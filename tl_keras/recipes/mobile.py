"""mobile: MobileNetV2 alpha 0.35 at 128 px, for phones (TFLite float16 about 1 MB).

The default recipe on the smallest MobileNetV2: a tenth of the multiply-adds
of alpha 1.0 at 224. `--weights=imagenet` needs no download for it: the
ImageNet weights ship with tl_keras.

  python experiments/train.py --recipe=mobile --image_dir=DATA
  python benchmarks/recipes.py --recipes=mobile

Measured: see the README's Recipes table (benchmarks/results/recipes.json).
"""

SETTINGS = {
    "backbone": "mobilenet_v2",
    "alpha": 0.35,
    "image_size": 128,
}
