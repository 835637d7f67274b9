"""tl_keras: transfer learning for Keras 3 on TensorFlow, from pretrained backbone to TF Serving and TFLite."""

from setuptools import find_packages, setup

setup(
    name="tl_keras",
    version="0.1.0",
    description="Transfer learning for Keras 3 on TensorFlow: pretrained backbones, two-phase training, TF Serving and TFLite export.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tl_keras", "tl_keras.*"]),
    # The embedded default's photos (CC BY 2.0, credits in LICENSE.txt) and ImageNet MobileNetV2 0.35 weights.
    package_data={"tl_keras": ["assets/flowers/LICENSE.txt", "assets/flowers/*/*.jpg", "assets/weights/*.h5", "assets/weights/*.md"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16,<2.22",
        # distribute.py patches one private Keras function (multi-worker log reduction): pinned to the tested minor versions.
        "keras>=3.3,<3.16",
        "tensorflow-hub>=0.16",
        "tensorflow-datasets>=4.9",
        # tensorflow-datasets imports it to prepare any dataset (dataset_builder.code_path) but does not declare it:
        # without it every --tfds download ends in ModuleNotFoundError before it starts.
        "importlib_resources",
        "absl-py>=1.0",
        # Metrics, the logistic-regression head start, and the digits example's data.
        "scikit-learn>=1.3",
        # Temperature scaling's one-dimensional fit and regression's Pearson and Spearman (scikit-learn already depends on it).
        "scipy>=1.9",
        "numpy",
        # The data check reads image headers (CMYK, 16-bit, alpha, truncation) with Pillow.
        "pillow>=9",
        # --tensorboard logs (TensorFlow no longer installs it).
        "tensorboard",
        # Confusion matrix and training curve plots.
        "matplotlib>=3.6",
        # PredictionLog protos for TF Serving warmup requests.
        "tensorflow-serving-api>=2.16",
        # Text classification (--text_file, --text_dir): BERT-family encoders and WordPiece tokenizers from keras-hub; it reads a
        # Hugging Face checkpoint's safetensors weights only with safetensors installed, which it does not declare. In
        # install_requires, not an extra: a text run is as much the product as an image run, and the README's one install
        # command must serve both. tensorflow-text (keras-hub's tokenizer ops) must match TensorFlow's minor version.
        "keras-hub>=0.20",
        "safetensors",
        "tensorflow-text>=2.16,<2.22",
    ],
    extras_require={
        # LiteRT, the maintained TFLite interpreter; used for parity checks when installed (else tf.lite.Interpreter).
        "litert": ["ai-edge-litert"],
        # tokenizers: Hugging Face's own WordPiece, the reference the tokenizer parity tests hold ours to.
        # import-linter: the layering contracts in pyproject.toml (tests/test_layout.py runs them).
        "test": ["pytest>=7", "ai-edge-litert", "ruff>=0.5", "tokenizers", "import-linter>=2.1"],
    },
)
