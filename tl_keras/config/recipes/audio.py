"""audio: Google's pretrained speech encoder, its head fitted on cached clip embeddings, then a short fine-tune.

What `--recipe=auto` picks for `--audio_dir` / `--audio_file` when the speech
encoder's two files are at hand (`--backbone=FOLDER`, $TL_KERAS_SPEECH_EMBEDDING
or ~/.keras/tl_keras/speech_embedding). Phase 1 fits the softmax head to
convergence (logistic regression) on the mean and max over time of the
encoder's 96-d embeddings, cached once; phase 2 fine-tunes the whole encoder
with Adam at 1e-4, SpecAugment masks and time shifts on; the better phase on
validation is kept.

  python experiments/train.py --audio_dir=clips/ --backbone=PATH/speech_embedding
  python benchmarks/audio.py

Measured by the second command (leave-one-speaker-out on spoken digits, six
held-out speakers, seeds 0-2): 0.971 +- 0.003 test accuracy against the
frozen probe's 0.961 and MFCC's 0.705; 0.957 at 30 clips per digit; 0.917
with noise at 10 dB SNR. A TF Hub audio module given as --backbone (yamnet,
...) gets this recipe too. See docs/audio.md.
"""

SETTINGS = {
    "backbone": "speech_embedding",
    "weights": "",
    "dropout": 0.2,
    "batch_size": 32,
    "frozen_epochs": 50,
    "head_init": "logistic",
    "fine_tune_epochs": 6,
    "fine_tune_min_steps": 0,
    "fine_tune_learning_rate": 1e-4,
    "fine_tune_optimizer": "adam",
    "fine_tune_warmup": 0.1,
    "lr_schedule": "cosine",
    "layer_rate_bottom": 1.0,
    "unfreeze": "all",
    "pooling": "avg",
}
