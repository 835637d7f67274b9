"""Training: the two phases (frozen head on cached features, then fine-tuning), freezing plans and layer-wise rates,
callbacks, exact resume, the learning-rate finder, distribution strategies, the scratch baseline (image pretraining is in `vision/`).
"""
