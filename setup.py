"""nos_tf: Neural Optimizer Search (Bello et al., 2017) in TensorFlow 2 / Keras 3."""

import os
import pathlib
import re

import setuptools

HERE = pathlib.Path(__file__).resolve().parent
# Read, not imported: importing nos_tf imports TensorFlow, which may not be installed yet.
VERSION = re.search(r'^__version__ = "([^"]+)"$',
                    (HERE / "nos_tf" / "__init__.py").read_text(encoding="utf-8"),
                    re.MULTILINE).group(1)
# GNMT's translation alone needs these: tensorflow-text has no Windows wheel, and a user
# who wants RuleOptimizer should not need it.
GNMT = [
    "sacrebleu",  # GNMT transfer BLEU
    "tensorflow-text",  # GNMT's word pieces
]

setuptools.setup(
    name="nos_tf",
    version=VERSION,
    description=(
        "Neural Optimizer Search with Reinforcement Learning: an LSTM controller "
        "writes optimizer update rules that become real Keras optimizers."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["nos_tf", "nos_tf.*"]),
    # The absl flagfiles of the README's commands, for an installed package too:
    # <prefix>/share/nos_tf/flags, where `python -m nos_tf.presets` finds them.
    data_files=[(os.path.join("share", "nos_tf", "flags"),
                 sorted(str(path.relative_to(HERE)) for path in (HERE / "flags").glob("*.cfg")))],
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
        "scikit-learn",  # the bundled `digits` dataset
        "scipy",  # the throughput benchmark's Spearman correlation (scikit-learn brings it)
        "psutil",  # the scaling benchmark's CPU times (tensorflow-datasets brings it)
    ],
    extras_require={
        "gnmt": GNMT,
        "ray": ["ray[default]"],
        "test": ["pytest", "pytest-xdist", "hypothesis", "ray[default]", *GNMT],
    },
    license="Apache-2.0",
)
