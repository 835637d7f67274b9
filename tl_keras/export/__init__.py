"""Production: the TF Serving SavedModel (signatures, warmup, versions), TFLite conversion with its parity report,
reloading a classifier from a run or an export, and the class names an export carries.
"""
