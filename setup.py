"""nos_tf: Neural Optimizer Search (Bello et al., 2017) in TensorFlow 2 / Keras 3."""

import setuptools

setuptools.setup(
    name="nos_tf",
    version="0.1.0",
    description=(
        "Neural Optimizer Search with Reinforcement Learning: an LSTM controller "
        "writes optimizer update rules that become real Keras optimizers."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["nos_tf", "nos_tf.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.21",  # ships Keras 3: tf.keras is keras.
        "keras>=3",  # imported directly everywhere (tensorflow brings it)
        "tensorflow-datasets",
        "importlib_resources",  # TFDS 4.9 imports it but declares it only for Python < 3.9
        "numpy",
        "absl-py",
        "tensorboard",  # tf.summary: the search's TensorBoard summaries
        "matplotlib",  # report and transfer plots
        "sacrebleu",  # GNMT transfer BLEU
        "tensorflow-text",  # GNMT's word pieces
        "scikit-learn",  # the bundled `digits` dataset
        "scipy",  # the throughput benchmark's Spearman correlation (scikit-learn brings it)
        "psutil",  # the scaling benchmark's CPU times (tensorflow-datasets brings it)
    ],
    extras_require={
        "ray": ["ray[default]"],
        "test": ["pytest", "pytest-xdist", "hypothesis", "ray[default]"],
    },
    license="Apache-2.0",
)
