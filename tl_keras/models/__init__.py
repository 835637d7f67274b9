"""Networks every modality shares: `anatomy` (a classifier's head, features, backbones, found from its graph), optimizers
with layer-wise rates and compiling (`builders`), the Hub layer, ensembles, losses.

Above `data/`; imports nothing from training, evaluation or export. Image backbones and `build_classifier` are in `vision/`.
"""
