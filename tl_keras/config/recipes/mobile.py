"""mobile: MobileNetV2 alpha 0.35 at 128 px, for phones (TFLite float16 about 1 MB).

The default recipe on the smallest MobileNetV2: a tenth of the multiply-adds
of alpha 1.0 at 224. `--weights=imagenet` needs no download for it: the
ImageNet weights ship with tl_keras.

  python experiments/train.py --recipe=mobile --image_dir=DATA
  python benchmarks/recipes.py --recipes=mobile --datasets=flowers --seeds=0,1,2

Measured by the second command (2 CPU cores, the bundled flowers at 40
labels per class): test accuracy 0.798 +- 0.012 against 0.790 +- 0.008 for
a converged linear probe on the same features; 36 s of training (with the
earlier default's 2-epoch fine-tune of layers 100+: 0.793 +- 0.006, 27 s).
On cats_and_dogs_filtered (`--datasets=cats_vs_dogs`, seeds 0-2): 0.912 +-
0.005 against 0.913 +- 0.014 for the probe; 44 s of training.
"""

SETTINGS = {
    "backbone": "mobilenet_v2",
    "alpha": 0.35,
    "image_size": 128,
}
