"""FusedBatchNormalization: Keras's batch norm, computed by TensorFlow's fused kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nos_tf import proxy
from nos_tf.models import wrn
from nos_tf.models.batch_norm import FusedBatchNormalization


def _pair(shape, dtype="float32", **kwargs):
    """A Keras layer and a fused one with the same (random, non-trivial) weights."""
    layers = [keras.layers.BatchNormalization(dtype=dtype, **kwargs),
              FusedBatchNormalization(dtype=dtype, **kwargs)]
    for layer in layers:
        layer.build(shape)
    rng = np.random.default_rng(1)
    weights = [rng.uniform(0.5, 2.0, size=w.shape).astype("float32") for w in layers[0].weights]
    for layer in layers:
        layer.set_weights(weights)
    return layers


def _inputs(shape):
    return tf.constant(np.random.default_rng(0).normal(2.0, 3.0, size=shape).astype("float32"))


def _train_steps(layer, x, steps=3):
    """Outputs and gradients (inputs, γ, β) of the first of `steps` training calls."""
    results = None
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))
        gradients = tape.gradient(loss, [x] + layer.trainable_variables)
        results = results or (y, gradients)
    return results


@pytest.mark.parametrize("epsilon, scale", [(1e-3, 1.0), (1e-5, 1.0), (1e-8, 1e-3)])
def test_fused_batch_norm_computes_keras_batch_norm(epsilon, scale):
    # The last: channels whose variance (1e-6) is below cuDNN's old least epsilon, 1.001e-5.
    x = _inputs((16, 5, 5, 8)) * scale
    reference, fused = _pair(x.shape, momentum=0.9, epsilon=epsilon)
    (y_ref, grads_ref), (y, grads) = _train_steps(reference, x), _train_steps(fused, x)
    np.testing.assert_allclose(y, y_ref, atol=1e-5)
    for gradient, expected in zip(grads, grads_ref):
        np.testing.assert_allclose(
            gradient, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # The moving statistics move alike: the kernel's Bessel-corrected variance is undone.
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        fused.moving_variance.numpy(), reference.moving_variance.numpy(), rtol=1e-6)
    np.testing.assert_allclose(fused(x, training=False), reference(x, training=False), atol=1e-5)


def _op_types(layer, x, training):
    call = tf.function(lambda inputs: layer(inputs, training=training))
    return {op.type for op in call.get_concrete_function(x).graph.get_operations()}


@pytest.mark.parametrize("training", [True, False])
def test_the_fused_kernel_does_the_work(training):
    x = _inputs((4, 3, 3, 2))
    layer = FusedBatchNormalization()
    assert "FusedBatchNormV3" in _op_types(layer, x, training)


@pytest.mark.parametrize("shape, axis", [((6, 4), -1), ((4, 2, 3, 3), 1)])
def test_inputs_the_kernel_does_not_cover_take_keras_path(shape, axis):
    x = _inputs(shape)
    reference, fused = _pair(x.shape, axis=axis)
    assert "FusedBatchNormV3" not in _op_types(fused, x, True)
    np.testing.assert_array_equal(fused(x, training=True), reference(x, training=True))
    np.testing.assert_array_equal(fused.moving_variance.numpy(), reference.moving_variance.numpy())


@pytest.mark.parametrize("policy, variables", [
    ("mixed_bfloat16", "float32"), ("mixed_float16", "float32"),
    ("bfloat16", "bfloat16"), ("float16", "float16"),
])
def test_half_precision_policies_give_keras_results(policy, variables):
    x = _inputs((8, 4, 4, 3))
    reference, fused = _pair(x.shape, dtype=policy)
    half = tf.bfloat16 if "bfloat16" in policy else tf.float16
    y = fused(tf.cast(x, half), training=True)
    expected = reference(tf.cast(x, half), training=True)
    assert y.dtype == half and fused.moving_mean.dtype == variables
    np.testing.assert_allclose(tf.cast(y, tf.float32), tf.cast(expected, tf.float32), atol=0.05)
    for ours, theirs in zip(fused.non_trainable_variables, reference.non_trainable_variables):
        np.testing.assert_allclose(tf.cast(ours, tf.float32), tf.cast(theirs, tf.float32),
                                   rtol=1e-2)


def test_a_saved_model_loads_with_its_fused_layers(tmp_path):
    model = proxy.build_child_network((8, 8, 1), 10, seed=0)
    x = _inputs((2, 8, 8, 1))
    model(x, training=True)  # moves the moving statistics away from their initial values
    model.save(tmp_path / "child.keras")
    loaded = keras.models.load_model(tmp_path / "child.keras")
    assert any(isinstance(layer, FusedBatchNormalization) for layer in loaded.layers)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


@pytest.mark.parametrize("build", [
    lambda: proxy.build_child_network((8, 8, 1), 10),
    lambda: wrn.wide_resnet(10, 1, 10, (8, 8, 1)),
])
def test_nos_tf_networks_normalize_with_the_fused_kernel(build):
    norms = [layer for layer in build().layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(isinstance(layer, FusedBatchNormalization) for layer in norms)
