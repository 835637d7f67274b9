"""Data that knows nothing of what an example is: splits, seeded epochs, subsets.

* `splits`: the split policy (stratified, seeded, recorded in split.json
  with the settings that made it) and `DataSplits`;
* `epochs`: `EpochBatches`, whose epoch `e` order depends only on (seed, e);
* `subsets`: label budgets, balanced class weights, every label folded in
  for the refit.

Each modality reads its own sources into these: images in
`tl_keras.vision.data`, texts in `tl_keras.text.data`. The image loading
names this package held before (`load_data`, `load_image_folder`, ...) are
still found here for one release; new code imports `tl_keras.vision.data`.
"""

from tl_keras.io.reexport import names_of as _names_of

__getattr__ = _names_of(__name__, "tl_keras.data.splits", "tl_keras.data.epochs", "tl_keras.data.subsets", "tl_keras.vision.data")
