"""Data that knows nothing of what an example is: splits, seeded epochs, subsets.

* `splits`: the split policy (stratified, seeded, recorded in split.json
  with the settings that made it) and `DataSplits`;
* `epochs`: `EpochBatches`, whose epoch `e` order depends only on (seed, e);
* `subsets`: label budgets, balanced class weights, every label folded in
  for the refit.

Each modality reads its own sources into these: images in
`tl_keras.vision.data`, texts in `tl_keras.text.data`, sound in `tl_keras.audio.data`.
"""
