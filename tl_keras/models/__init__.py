"""Networks: backbone registry and loading (Keras Applications, TF Hub, .keras files), the classifier builder, the Hub layer,
ensembles, losses, and `anatomy` (finding a classifier's backbone, features and head).

Above `data/`; imports nothing from training, evaluation or export.
"""
