"""Batch normalization by TensorFlow's fused kernel, as a drop-in Keras layer.

Keras 3 normalizes with separate ops — the batch's moments, then the affine transform —
and differentiates each. On CPU that costs the proxy's child network (two 3×3
convolutions of 32 filters) about half of its training step: 80 ms a step of 100
Fashion-MNIST images on one core, against 51 ms with TensorFlow's `FusedBatchNormV3`
(oneDNN's kernel on CPU, cuDNN's on GPU, the default of Keras 2's layer), which does the
forward pass and its gradient in one op each (`python -m nos_tf.benchmarks.batch_norm`).
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="nos_tf")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by `tf.compat.v1.nn.fused_batch_norm`.

    The same function, variables and saved weights as the Keras layer: in training it
    normalizes with the batch's mean and (biased) variance and moves the moving
    statistics by `momentum` exactly as Keras does; in inference it uses the moving ones.
    The kernel sums in another order (outputs agree to ~1e-6), and in inference it has
    no gradient with respect to the moving statistics, which Keras's ops have (nothing
    in nos_tf differentiates them).

    Inputs the kernel does not cover — not 4-D with channels last, a mask, batch
    renormalization, synchronized statistics — take Keras's own path.
    """

    def _fusable(self, inputs, mask) -> bool:
        return (
            mask is None
            and not self.renorm
            and not self.synchronized
            and tf.TensorShape(inputs.shape).rank == 4
            and self.axis in (3, -1)
            and inputs.dtype in (tf.float32, tf.float16, tf.bfloat16)
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        # In float32 whatever the variables' dtype, as Keras computes them.
        moving_mean = tf.cast(self.moving_mean, tf.float32)
        moving_variance = tf.cast(self.moving_variance, tf.float32)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, is_training=True
            )
            # The kernel returns the batch variance with Bessel's correction, for the
            # moving average; Keras averages the biased one, which it also normalizes by.
            count = tf.cast(tf.size(inputs) // channels, tf.float32)
            variance *= (count - 1.0) / tf.maximum(count, 1.0)
            momentum = self.momentum
            self.moving_mean.assign(moving_mean * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(
                moving_variance * momentum + variance * (1.0 - momentum)
            )
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=moving_mean, variance=moving_variance,
                epsilon=self.epsilon, is_training=False,
            )
        return tf.cast(outputs, self.compute_dtype)
