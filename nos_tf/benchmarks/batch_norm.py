"""Training-step time with Keras's batch norm and with TensorFlow's fused kernel.

    python -m nos_tf.benchmarks.batch_norm [--steps=20] [--rounds=5]

Times one training step (forward, gradients, RuleOptimizer(PowerSign)'s update) of the
networks nos_tf trains — the proxy's child network on a batch of 100 28×28 images, and
the CPU preset's WRN-16-2 on 128 — built once with `keras.layers.BatchNormalization` and
once with `nos_tf.models.batch_norm.FusedBatchNormalization`, everything else equal.
Prints the median of each, measured side by side in interleaved rounds (the machine is
shared and noisy), and the speed-up.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

import nos_tf
from nos_tf import proxy
from nos_tf.benchmarks import interleaved_medians, run_main
from nos_tf.models import wrn
from nos_tf.models.batch_norm import FusedBatchNormalization

_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per contender per round.", lower_bound=1)
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Interleaved rounds; the median is over all steps.",
                               lower_bound=1)

_NETWORKS = {
    # name: (build(batch_norm_class) -> model, image shape, batch size)
    "proxy child": (
        lambda batch_norm: proxy.build_child_network((28, 28, 1), 10, batch_norm=batch_norm),
        (28, 28, 1), 100,
    ),
    "WRN-16-2": (
        lambda batch_norm: wrn.wide_resnet(16, 2, 10, (28, 28, 1), batch_norm=batch_norm),
        (28, 28, 1), 128,
    ),
}
_BATCH_NORMS = {"keras": keras.layers.BatchNormalization, "fused": FusedBatchNormalization}


def training_step(build, image_shape, batch_size, batch_norm):
    """One compiled training step of a fresh model on a fixed random batch."""
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(batch_size, *image_shape)).astype("float32"))
    labels = tf.constant(rng.integers(0, 10, size=batch_size))
    model = build(batch_norm)
    optimizer = nos_tf.RuleOptimizer("g * exp(sign(g) * sign(m))", learning_rate=1e-3)
    optimizer.build(model.trainable_variables)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = loss(labels, model(images, training=True)) + sum(model.losses)
        gradients = tape.gradient(value, model.trainable_variables)
        optimizer.apply(gradients, model.trainable_variables)
        return value

    return lambda: float(step())  # float: waits for the step


def measure(steps: int, rounds: int) -> dict[tuple[str, str], float]:
    """Median seconds per step of every (network, batch norm), interleaved."""
    contenders = {
        (network, norm): training_step(build, shape, batch, layer)
        for network, (build, shape, batch) in _NETWORKS.items()
        for norm, layer in _BATCH_NORMS.items()
    }
    return interleaved_medians(contenders, steps, rounds)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    medians = measure(_STEPS.value, _ROUNDS.value)
    print(f"Training step, median of {_ROUNDS.value}×{_STEPS.value} steps, interleaved.")
    print(f"{'network':12s} {'keras ms':>9s} {'fused ms':>9s} {'speed-up':>9s}")
    for network in _NETWORKS:
        keras_time, fused_time = medians[network, "keras"], medians[network, "fused"]
        print(f"{network:12s} {keras_time * 1e3:9.1f} {fused_time * 1e3:9.1f} "
              f"{keras_time / fused_time:8.2f}x")


if __name__ == "__main__":
    run_main(main)
