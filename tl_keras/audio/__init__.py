"""Sound: clips of speech or other audio through the same two phases, as the third modality.

An example is a mono waveform at the model's sample rate, padded or cropped
to one clip length; the front end (log-mel spectrogram, or a pretrained
speech encoder's own) sits inside the model, so the export takes sound.
"""
