"""Pixels: decoding photos upright, the data check, augmentation, test-time views, the backbones' pixel normalisation layers.

The image modality's primitives. Above `io/` and `config/`; `data/`, `models/`, `training/`, `evaluation/` and `export/` import
it where they handle images. Text has its own folder, `text/`, at the top.
"""
