"""The names an exported SavedModel promises: signatures, their inputs and outputs, and the files beside it.

TF Serving clients, the warmup records, the TFLite converter and the tests
all address an export by these names, so they live in one module that
imports nothing.
"""

SERVING_SIGNATURE = "serving_default"
PIXELS_SIGNATURE = "predict_pixels"
TTA_SIGNATURE = "serving_tta"
BYTES_INPUT = "image_bytes"
PIXELS_INPUT = "images"
PROBABILITIES = "probabilities"
CLASSES = "classes"
SCORES = "scores"
EXTRA_ASSETS = "assets.extra"
LABELS_FILE = "labels.txt"
MODEL_CARD = "model_card.json"
KERAS_COPY = "model.keras"
WARMUP_FILE = "tf_serving_warmup_requests"
HUB_MODULES = "hub_modules"  # beside the Keras copy: the Hub modules it calls, so it loads on another machine
