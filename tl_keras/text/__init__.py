"""Text classification: labelled texts, BERT-family encoders, token-id batches, the text run and its export.

The text modality beside the image one: it plugs its own data, encoder,
batches, evaluation and export into the shared core (run folder, settings,
both training phases, calibration, export versioning). Importing this
package loads keras-hub only when an encoder or tokenizer is built.
"""
