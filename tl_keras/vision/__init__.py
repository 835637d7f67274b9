"""The image modality, above the core: sources and their pipeline, backbones and the classifier builder, augmentation and
test-time views, the data check, inspection (Grad-CAM, the gallery), the SavedModel's image signatures and image TFLite.

Imports the core (`data/` to `export/`); the core never imports it. Text has its own folder, `text/`, beside it.
"""
