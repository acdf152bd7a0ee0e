"""RuleOptimizer in the ways people train Keras models."""

import ast
import inspect
import json
import math
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import nos_tf

POWERSIGN = "g * exp(sign(g) * sign(m))"


def classification_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6, 6, 1)).astype("float32")
    y = (x[:, :3].mean(axis=(1, 2, 3)) > x[:, 3:].mean(axis=(1, 2, 3))).astype("int32")
    return x, y


def small_convnet():
    return keras.Sequential([
        keras.Input((6, 6, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(2),
    ])


def compile_and_fit(optimizer, jit_compile=False, epochs=4, model=None):
    keras.utils.set_random_seed(0)
    model = model or small_convnet()
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    x, y = classification_data()
    return model, model.fit(x, y, epochs=epochs, batch_size=32, verbose=0).history["loss"]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_reduces_loss(jit_compile):
    _, losses = compile_and_fit(
        nos_tf.RuleOptimizer(POWERSIGN, learning_rate=0.01), jit_compile=jit_compile
    )
    assert losses[-1] < losses[0] * 0.9


def test_one_line_compile_from_the_readme():
    model = small_convnet()
    model.compile(optimizer=nos_tf.RuleOptimizer(POWERSIGN, learning_rate=1e-3), loss="mse")
    assert isinstance(model.optimizer, keras.optimizers.Optimizer)


def apply_steps(optimizer, steps=20, seed=0):
    """A custom GradientTape loop on a least-squares problem; returns the weights."""
    rng = np.random.default_rng(seed)
    a = tf.constant(rng.normal(size=(16, 4)).astype("float32"))
    b = tf.constant(rng.normal(size=(16,)).astype("float32"))
    w = tf.Variable(rng.normal(size=(4,)).astype("float32"))
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((tf.linalg.matvec(a, w) - b) ** 2)
        optimizer.apply_gradients([(tape.gradient(loss, w), w)])
    return w.numpy()


def test_gradient_tape_loop_matches_keras_sgd_and_adam():
    np.testing.assert_allclose(
        apply_steps(nos_tf.RuleOptimizer("g", learning_rate=0.05)),
        apply_steps(keras.optimizers.SGD(learning_rate=0.05)), rtol=1e-6,
    )
    np.testing.assert_allclose(
        apply_steps(nos_tf.RuleOptimizer("adam", learning_rate=0.05)),
        apply_steps(keras.optimizers.Adam(learning_rate=0.05, epsilon=1e-8)), rtol=1e-4,
    )


def test_learning_rate_schedule_and_weight_decay_match_keras_sgd():
    schedule = lambda: keras.optimizers.schedules.ExponentialDecay(0.1, 5, 0.5)
    np.testing.assert_allclose(
        apply_steps(nos_tf.RuleOptimizer("g", learning_rate=schedule(), weight_decay=0.1)),
        apply_steps(keras.optimizers.SGD(learning_rate=schedule(), weight_decay=0.1)), rtol=1e-6,
    )


def test_state_only_for_the_moments_the_rule_reads():
    def moment_variables(text):
        optimizer = nos_tf.RuleOptimizer(text)
        optimizer.build([tf.Variable(np.zeros(3, "float32"))])
        return sorted(v.name.rsplit("_", 1)[1] for v in optimizer.variables if "moment" in v.name)

    assert moment_variables("g") == []
    assert moment_variables(POWERSIGN) == ["m"]
    assert moment_variables("adam * exp(y)") == ["m", "v", "y"]


@pytest.mark.parametrize("rule, factor", [("g / (sign(g) - 1)", 1.0),
                                          ("2 * (g / (sign(g) - 1))", 2.0)])  # Not on top.
def test_a_division_keeps_its_delta_when_the_update_is_compiled(rule, factor):
    # Compiled (a tf.function, model.fit's, or XLA), a constant δ was folded away:
    # (sign(g) - 1) + 1e-8 became sign(g) + (1e-8 - 1), which float32 rounds to
    # sign(g) - 1, and the update divided by 0 where the screen (eager) saw 1e-8.
    gradient = tf.constant([-0.5, 0.3, 0.0, 1e-3])
    expected = -1e-3 * factor * gradient.numpy() / (
        np.sign(gradient.numpy()) - 1 + np.float32(1e-8))
    for jit_compile in (False, True):
        for compiled in (False, True):
            variable = tf.Variable(tf.zeros(4))
            optimizer = nos_tf.RuleOptimizer(rule, learning_rate=1e-3, jit_compile=jit_compile)
            apply = lambda: optimizer.apply_gradients([(gradient, variable)])
            (tf.function(apply) if compiled else apply)()
            np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6)
    deltas = [v for v in optimizer.variables if "division_delta" in v.name]
    assert [float(v.numpy()) for v in deltas] == [1e-8]
    unused = nos_tf.RuleOptimizer("g * m")
    unused.build([variable])
    assert not [v for v in unused.variables if "division_delta" in v.name]


def test_seeded_randomness_is_reproducible():
    rule = "drop(g, 0.5) + noise_t * 0.1 + noise"
    same = [apply_steps(nos_tf.RuleOptimizer(rule, learning_rate=0.1, seed=3)) for _ in range(2)]
    other = apply_steps(nos_tf.RuleOptimizer(rule, learning_rate=0.1, seed=4))
    np.testing.assert_array_equal(same[0], same[1])
    assert not np.allclose(same[0], other)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_drop_zeroes_infinite_elements(jit_compile):
    """drop(x, p) zeroes what it drops, also ±inf (log|0|): 0 · inf would be NaN."""
    variable = tf.Variable(np.ones(1000, "float32"))
    optimizer = nos_tf.RuleOptimizer("drop(log(g), 0.5)", learning_rate=0.1,
                                     jit_compile=jit_compile)
    optimizer.apply_gradients([(tf.zeros(1000), variable)])
    weights = variable.numpy()
    assert not np.isnan(weights).any()
    assert 400 < np.sum(weights == 1.0) < 600  # dropped: unchanged
    assert np.all((weights == 1.0) | (weights == np.inf))  # kept: w − 0.1 · log|0|


def test_float64_variables_get_float64_constants():
    """0.1 and β rounded to float32 would be off by 1.5e-9: a float32 update in float64."""
    variable = keras.Variable(np.zeros(3), dtype="float64")
    optimizer = nos_tf.RuleOptimizer("0.1 * g + adam", learning_rate=1.0)
    for _ in range(3):
        optimizer.apply_gradients([(tf.ones(3, "float64"), variable)])
    m = v = 0.0
    expected = 0.0
    for t in range(1, 4):
        m, v = 0.9 * m + 0.1, 0.999 * v + 0.001
        expected -= 0.1 + (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-14)


def test_seeds_and_variables_draw_independent_numbers():
    """Neighbouring seeds, a seed against another variable's stream, and one seed's two
    variables (a model's same-shaped layers) share no draws."""
    def updates(rule, seed, index=0):
        variables = [keras.Variable(np.zeros(256, "float32")) for _ in range(2)]
        optimizer = nos_tf.RuleOptimizer(rule, learning_rate=1.0, seed=seed)
        steps = []
        for _ in range(10):
            before = variables[index].numpy()
            optimizer.apply_gradients([(tf.ones(256), v) for v in variables])
            steps.append(before - variables[index].numpy())
        return np.concatenate(steps)

    two_drops = "drop(g, 0.5) + drop(g, 0.5)"
    assert abs(np.corrcoef(updates(two_drops, 0), updates(two_drops, 1))[0, 1]) < 0.1
    assert abs(np.corrcoef(updates("noise", 7919), updates("noise", 0, index=1))[0, 1]) < 0.1
    assert abs(np.corrcoef(updates("noise", 0), updates("noise", 0, index=1))[0, 1]) < 0.1


def test_noise_t_anneals_its_variance_as_1_over_1_plus_t_to_the_0_55():
    """Neelakantan et al.'s gradient noise, which the paper's `noise_t` operand is."""
    variable = keras.Variable(np.zeros(20000, "float32"))
    optimizer = nos_tf.RuleOptimizer("noise_t", learning_rate=1.0, seed=0)
    steps = []
    for _ in range(11):
        before = variable.numpy()
        optimizer.apply_gradients([(tf.ones(20000), variable)])
        steps.append(before - variable.numpy())
    assert np.std(steps[0]) == pytest.approx(1.0, rel=0.05)
    assert np.std(steps[10]) == pytest.approx(11.0 ** (-0.55 / 2), rel=0.05)


def test_beta_3_is_the_decay_of_y():
    """`y`, the moving average of g³, has a decay of its own; β₂'s default hid a mix-up."""
    variable = keras.Variable(np.zeros(1, "float32"))
    optimizer = nos_tf.RuleOptimizer("y", learning_rate=1.0, beta_3=0.5, jit_compile=False)
    for gradient in (1.0, 2.0):
        optimizer.apply_gradients([(tf.constant([gradient]), variable)])
    y_1 = (0.5 * 1.0) / (1 - 0.5)  # Bias-corrected, as m and v are.
    y_2 = (0.5 * 0.5 * 1.0 + 0.5 * 8.0) / (1 - 0.25)
    np.testing.assert_allclose(variable.numpy(), [-(y_1 + y_2)], rtol=1e-6)


@pytest.mark.parametrize("seed", [1.5, "1", True, 2**32, 2**31, -(2**31) - 1])
def test_seed_must_be_an_int32(seed):
    with pytest.raises(ValueError, match="`seed` must"):
        nos_tf.RuleOptimizer("noise", seed=seed)


@pytest.mark.parametrize("seed", [2**31 - 1, -(2**31)])
def test_the_int32_bounds_are_seeds(seed):
    assert nos_tf.RuleOptimizer("noise", seed=seed).seed == seed


@pytest.mark.parametrize("argument, value", [
    ("beta_1", "0.9"), ("beta_2", None), ("beta_3", 1.0), ("decay_steps", float("inf")),
    ("decay_steps", "10"), ("decay_steps", True), ("jit_compile", "no")])
def test_bad_arguments_are_named_when_the_optimizer_is_made(argument, value):
    """Not a TypeError of a comparison that names no argument, or NaN weights at the
    first step (decay_steps=inf), or a jit_compile="no" that compiled."""
    with pytest.raises(ValueError, match=f"Argument `{argument}` must be"):
        nos_tf.RuleOptimizer("ld * g", **{"decay_steps": 10, argument: value})


@pytest.mark.parametrize("learning_rate", [float("nan"), float("inf"), -1.0, -1])
def test_a_bad_number_learning_rate_is_named_when_the_optimizer_is_made(learning_rate):
    """Keras takes a NaN or negative float and trains to NaN weights, or uphill."""
    with pytest.raises(ValueError, match=r"Argument `learning_rate` must be a finite number, "
                                         r"not negative\. Received: learning_rate="):
        nos_tf.RuleOptimizer("g", learning_rate=learning_rate)


def test_a_zero_learning_rate_and_a_schedule_are_taken():
    """0 freezes the weights, which is legitimate; a schedule is Keras's to check."""
    assert float(nos_tf.RuleOptimizer("g", learning_rate=0.0).learning_rate) == 0.0
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    assert nos_tf.RuleOptimizer("g", learning_rate=schedule)._learning_rate is schedule


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("make", [lambda: nos_tf.RuleOptimizer("g"), nos_tf.PowerSign,
                                  nos_tf.AddSign])
def test_other_keras_backends_are_refused_by_name(monkeypatch, backend, make):
    """The update is a tf.function over tf ops: under jax or torch it would fail at the
    first step, deep in Keras, naming neither the backend nor nos_tf."""
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    with pytest.raises(ValueError, match=f"needs Keras's TensorFlow backend; "
                                         f"KERAS_BACKEND is '{backend}'"):
        make()


@pytest.mark.parametrize("optimizer", [nos_tf.RuleOptimizer, nos_tf.PowerSign, nos_tf.AddSign])
def test_documented_defaults_are_the_signatures(optimizer):
    """Each "Defaults to X" of the docstring's Args is the signature's default (seed's
    once said 0 where the signature has None; None is seed 0, which the text must say)."""
    defaults = {name: parameter.default
                for name, parameter in inspect.signature(optimizer).parameters.items()}
    documented = re.findall(r"^ {6}(\w+): (.*?)(?=^ {6}\w+: |\Z)", optimizer.__doc__,
                            flags=re.MULTILINE | re.DOTALL)
    checked = 0
    for name, text in documented:
        stated = re.search(r"Defaults to `?(.+?)`?[.,:]?(?:\s|$)", text)
        if stated is None or name not in defaults:
            continue
        value = math.e if stated[1] == "e" else ast.literal_eval(stated[1])
        assert value == defaults[name] and (value is None) == (defaults[name] is None), name
        checked += 1
    assert checked >= 2
    assert "None" in dict(documented).get("seed", "None")


def test_a_whole_number_learning_rate_is_taken_and_an_integer_variable_is_refused():
    optimizer = nos_tf.RuleOptimizer("g", learning_rate=1)  # keras.optimizers.SGD refuses
    assert float(optimizer.learning_rate) == 1.0
    assert repr(optimizer) == "<RuleOptimizer rule='g'>"
    with pytest.raises(TypeError, match="updates floating-point variables; .* is int32"):
        optimizer.build([keras.Variable(np.zeros(3, "int32"), dtype="int32")])


def run_from_step(rule, dtype, start, steps, gradients):
    """Updates of a `dtype` variable from iteration `start` on; returns the variable's
    values (as float32) after each step and the optimizer."""
    variable = keras.Variable(np.zeros(gradients.shape[1:], "float32"), dtype=dtype)
    optimizer = nos_tf.RuleOptimizer(rule, learning_rate=0.1, seed=3)
    optimizer.build([variable])
    optimizer.iterations.assign(start)
    values = []
    for gradient in gradients[:steps]:
        optimizer.apply_gradients([(tf.cast(gradient, dtype), variable)])
        values.append(np.asarray(tf.cast(variable, "float32")))
    return np.stack(values), optimizer


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_variables_update_in_float32(dtype):
    """In bfloat16, β = 0.999 is 1 and the step counter stalls after 256 steps; a 16-bit
    variable's update is computed and its moments kept in float32, then rounded once."""
    rng = np.random.default_rng(0)
    # Gradients that the 16-bit dtype holds exactly, so both runs see the same numbers.
    gradients = np.asarray(tf.cast(tf.cast(rng.normal(size=(300, 16)), dtype), "float32"))

    half, half_optimizer = run_from_step("adam * exp(y)", dtype, 0, 300, gradients)
    full, full_optimizer = run_from_step("adam * exp(y)", "float32", 0, 300, gradients)
    assert np.all(np.isfinite(half))
    np.testing.assert_array_equal(half[0], np.asarray(tf.cast(tf.cast(full[0], dtype), "float32")))
    moments = [v for v in half_optimizer.variables if "moment" in v.name]
    assert [m.dtype for m in moments] == ["float32"] * 3
    for ours, reference in zip(
            moments, [v for v in full_optimizer.variables if "moment" in v.name]):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-6)

    # Past bfloat16's (and float16's) exact integers every step draws a fresh mask.
    masks = run_from_step("drop(g, 0.5)", dtype, 5000, 6, np.ones((6, 64), "float32"))[0]
    steps = -np.diff(np.concatenate([np.zeros((1, 64)), masks]), axis=0)
    full_masks = run_from_step("drop(g, 0.5)", "float32", 5000, 6, np.ones((6, 64), "float32"))[0]
    np.testing.assert_array_equal(steps > 0, -np.diff(np.concatenate(
        [np.zeros((1, 64)), full_masks]), axis=0) > 0)
    assert len({tuple(step > 0) for step in steps}) == 6


@pytest.mark.parametrize("dtype, weight, gradient, learning_rate", [
    ("bfloat16", 1.0, 2.0**-9, 1 + 2.0**-11),  # a step just over half bfloat16's unit at 1
    ("float16", 1.0, 2.0**-12, 1 + 2.0**-12),  # the same in float16
    ("float16", 60000.0, 1.0, 70000.0),  # a step past float16's largest number, 65504
])
def test_a_half_precision_weight_is_rounded_once(dtype, weight, gradient, learning_rate):
    """The new weight is w − lr·g in float32, rounded to 16 bits once. The step rounded to
    16 bits before a 16-bit subtraction lost the step (rounded twice: to half a unit, then
    to the even neighbour) or made it inf."""
    variable = keras.Variable(np.array([weight]), dtype=dtype)
    nos_tf.RuleOptimizer("g", learning_rate=learning_rate).apply(
        [tf.constant([gradient], dtype)], [variable])
    exact = np.float32(weight) - np.float32(learning_rate) * np.float32(gradient)
    expected = tf.cast(tf.cast(tf.constant([exact]), dtype), "float32")
    np.testing.assert_array_equal(tf.cast(variable, "float32"), expected)
    assert float(expected[0]) != weight and np.isfinite(float(expected[0]))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("options", [
    {"gradient_accumulation_steps": 2},
    {"use_ema": True, "ema_overwrite_frequency": 1},
    {"use_ema": True},
])
def test_half_precision_variables_take_keras_ema_and_gradient_accumulation(dtype, options):
    """Keras makes its EMA averages and gradient accumulators through
    `add_variable_from_reference` too, and assigns between them and the variable in its
    dtype: only the rule's moments are float32 (all of them were, and both options failed
    on a dtype mismatch)."""
    results = {}
    for name, make in [("rule", lambda: nos_tf.RuleOptimizer("g", learning_rate=0.125, **options)),
                       ("sgd", lambda: keras.optimizers.SGD(0.125, **options))]:
        variable = keras.Variable(np.ones(3), dtype=dtype)
        optimizer = make()
        for _ in range(2):
            optimizer.apply_gradients([(tf.ones(3, dtype), variable)])
        optimizer.finalize_variable_values([variable])
        results[name] = np.asarray(tf.cast(variable, "float32"))
    np.testing.assert_array_equal(results["rule"], results["sgd"])
    assert not np.array_equal(results["rule"], np.ones(3))


def test_random_operands_draw_anew_each_step_past_float32s_exact_integers():
    """The step folded into the seeds is the integer iteration count: from 2**24 on a
    float32 count gave two steps one seed, so `noise` repeated itself."""
    values = run_from_step("noise", "float32", 2**24, 2, np.ones((2, 8), "float32"))[0]
    draws = -np.diff(np.concatenate([np.zeros((1, 8)), values]), axis=0)
    assert not np.array_equal(draws[0], draws[1])


def test_update_step_takes_a_keras_variable_as_keras_optimizers_do():
    variables = [keras.Variable(np.ones(3, "float32")) for _ in range(2)]
    optimizers = [nos_tf.RuleOptimizer("m", learning_rate=0.1) for _ in range(2)]
    for optimizer, variable in zip(optimizers, variables):
        optimizer.build([variable])
    optimizers[0].update_step(tf.ones(3), variables[0], 0.1)
    optimizers[1].apply([tf.ones(3)], [variables[1]])
    np.testing.assert_array_equal(variables[0].numpy(), variables[1].numpy())
    assert not np.array_equal(variables[0].numpy(), np.ones(3))


def test_decay_operands_need_decay_steps():
    for rule in ("ld * g", "cd * g", "rd * g"):
        with pytest.raises(ValueError, match="decay_steps"):
            nos_tf.RuleOptimizer(rule)
    optimizer = nos_tf.RuleOptimizer("ld * g", learning_rate=0.1, decay_steps=10)
    before = apply_steps(optimizer, steps=10)
    after = apply_steps(nos_tf.RuleOptimizer("ld * g", learning_rate=0.1, decay_steps=10), steps=30)
    np.testing.assert_allclose(before, after, rtol=1e-6)  # ld is 0 from step T on


def first_update(rule, gradient):
    """The update of one step at learning rate 1 (`w ← w − update`)."""
    variable = tf.Variable(tf.zeros(len(gradient)))
    nos_tf.RuleOptimizer(rule, learning_rate=1.0).apply_gradients(
        [(tf.constant(gradient, tf.float32), variable)])
    return -variable.numpy()


@pytest.mark.parametrize("rule, meaning", [
    ("-g", np.negative), ("exp(g)", np.exp), ("log(g)", lambda g: np.log(np.abs(g))),
    ("sqrt(g)", lambda g: np.sqrt(np.abs(g))), ("sign(g)", np.sign),
    ("clip(g, 1e-4)", lambda g: np.clip(g, -1e-4, 1e-4)),
])
def test_each_function_computes_what_the_vocabulary_says(rule, meaning):
    gradient = np.array([-2.0, -5e-5, 0.5, 5e-5, 3.0], np.float32)
    np.testing.assert_allclose(first_update(rule, gradient), meaning(gradient), rtol=1e-6)


def test_noise_has_variance_0_01_and_drop_keeps_a_fraction_1_minus_p():
    count = 100_000
    noise = first_update("noise", np.zeros(count, np.float32))
    assert abs(noise.mean()) < 2e-3 and abs(noise.std() - 0.1) < 2e-3
    dropped = first_update("drop(g, 0.3)", np.full(count, 2.0, np.float32))
    assert set(np.unique(dropped)) == {0.0, 2.0}
    assert abs(np.mean(dropped == 2.0) - 0.7) < 0.01


def test_a_rule_that_reads_nothing_per_coordinate_moves_every_coordinate():
    """`ld` or `2` is one number for the whole variable (the search screens such rules
    out; a user may still write one, and the throughput benchmark's naive run trains them)."""
    initial = apply_steps(nos_tf.RuleOptimizer("g", learning_rate=0.0), steps=1)
    moved = apply_steps(nos_tf.RuleOptimizer("2", learning_rate=0.1), steps=3)
    np.testing.assert_allclose(moved, initial - 3 * 0.1 * 2, rtol=1e-6)
    _, losses = compile_and_fit(
        nos_tf.RuleOptimizer("clip(ld, 1e-5)", learning_rate=0.1, decay_steps=10), epochs=1)
    assert np.isfinite(losses[-1])


def test_bad_rule_text_is_a_syntax_error():
    with pytest.raises(nos_tf.RuleSyntaxError, match="position"):
        nos_tf.RuleOptimizer("g * exp(sign(g) * sign(q))")


def test_nan_from_a_rule_shows_in_the_loss_without_crashing():
    _, losses = compile_and_fit(nos_tf.RuleOptimizer("g * log(g - g)", learning_rate=0.1), epochs=2)
    assert not np.isfinite(losses[-1])


def test_mixed_float16_wraps_in_loss_scale_optimizer():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model, losses = compile_and_fit(nos_tf.RuleOptimizer(POWERSIGN, learning_rate=0.01))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.layers[0].kernel.dtype == "float32"
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_embedding_indexed_slices_gradients():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((5,), dtype="int32"),
        keras.layers.Embedding(50, 8),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(1),
    ])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, size=(128, 5))
    y = (x % 2).mean(axis=1, keepdims=True).astype("float32")
    model.compile(optimizer=nos_tf.RuleOptimizer(POWERSIGN, learning_rate=0.05), loss="mse")
    losses = model.fit(x, y, epochs=5, batch_size=16, verbose=0).history["loss"]
    assert losses[-1] < losses[0] * 0.8


MIRRORED_AGAINST_ONE_DEVICE = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    [cpu] = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import nos_tf

    def trained_weights(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="tanh"),
                                      keras.layers.Dense(3)])
            model.compile(optimizer=nos_tf.RuleOptimizer(sys.argv[1], learning_rate=0.05, seed=3),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        rng = np.random.default_rng(0)
        x = rng.normal(size=(64, 8)).astype("float32")
        y = rng.integers(0, 3, size=64).astype("int32")
        model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        return model.get_weights()

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    one = trained_weights(tf.distribute.OneDeviceStrategy("/cpu:0"))
    two = trained_weights(mirrored)
    print(max(float(np.max(np.abs(a - b))) for a, b in zip(one, two)))
""")


def test_mirrored_strategy_over_two_devices_trains_as_one_device_does():
    """Each replica's gradients are summed, then the rule updates each variable once:
    moments and random operands included, two replicas give one device's weights. (In a
    process of its own: logical devices must be set before TensorFlow starts.)"""
    rule = "drop(g, 0.3) * exp(sign(g) * sign(m)) + 0.01 * noise"
    process = subprocess.run(
        [sys.executable, "-c", MIRRORED_AGAINST_ONE_DEVICE, rule], capture_output=True,
        text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert float(process.stdout.split()[-1]) < 1e-5


VARIABLES_ON_TWO_DEVICES = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    [cpu] = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import nos_tf

    def fit(jit_compile, dtype):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((5,), dtype="int32")
        with tf.device("/cpu:1"):  # A table kept off the device of the rest of the model.
            embedding = keras.layers.Embedding(50, 4, dtype=dtype)
            features = embedding(inputs)
        outputs = keras.layers.Dense(1)(keras.layers.Flatten()(features))
        model = keras.Model(inputs, outputs)
        optimizer = nos_tf.RuleOptimizer("adam / (g + 1)", learning_rate=0.01,
                                         jit_compile=jit_compile)
        model.compile(optimizer=optimizer, loss="mse")
        rng = np.random.default_rng(0)
        x = rng.integers(0, 50, size=(64, 5))
        y = rng.normal(size=(64, 1)).astype("float32")
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        assert embedding.embeddings.value.device.endswith("CPU:1")
        moments = [v for v in optimizer.variables if "embedding" in v.path]
        assert moments and all(v.value.device.endswith("CPU:1") for v in moments), moments
        return model.get_weights()

    for dtype in ("float32", "float16"):
        compiled, plain = fit(True, dtype), fit(False, dtype)
        print(max(float(np.max(np.abs(a.astype("float64") - b)))
                  for a, b in zip(compiled, plain)))
""")


def test_a_model_with_variables_on_two_devices_trains_with_the_compiled_update():
    """XLA runs a computation on one device: a model whose embedding was kept on another
    device than its other variables failed to train ("Trying to access resource ...
    located in device CPU:0 from device CPU:1") where Keras's Adam trains. The moments
    of that embedding (made on the default device in fit) had the same problem."""
    process = subprocess.run(
        [sys.executable, "-c", VARIABLES_ON_TWO_DEVICES], capture_output=True, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert [float(line) < 1e-5 for line in process.stdout.split()] == [True, True], (
        process.stdout)


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("rule", ["drop(g, 0.3)", "drop(log(g), 0.5) + g"])
def test_a_variable_of_rank_nine_is_updated_as_its_elements_in_a_row_are(rule, jit_compile):
    """drop's select failed in TensorFlow's CPU kernel past rank 8 ("Broadcast between
    [2,2,2,2,2,2,2,2,2] and [] is not supported yet") without XLA. (XLA draws other random
    numbers than TensorFlow's kernels: each mode is compared with itself.)"""
    shape = (2,) * 9
    gradient = tf.random.stateless_normal(shape, seed=(1, 2))
    updated = []
    for variable_shape in (shape, (512,)):
        variable = keras.Variable(np.ones(variable_shape, "float32"))
        nos_tf.RuleOptimizer(rule, learning_rate=0.1, seed=4, jit_compile=jit_compile
                             ).apply_gradients([(tf.reshape(gradient, variable_shape), variable)])
        updated.append(variable.numpy().ravel())
    np.testing.assert_allclose(*updated, rtol=1e-6)
    assert np.isfinite(updated[0]).all() and (updated[0] != 1.0).any()


def test_without_xla_the_update_is_the_same():
    np.testing.assert_allclose(
        apply_steps(nos_tf.RuleOptimizer(POWERSIGN, learning_rate=0.05, jit_compile=False)),
        apply_steps(nos_tf.RuleOptimizer(POWERSIGN, learning_rate=0.05)), rtol=1e-6)


def test_config_round_trip():
    optimizer = nos_tf.RuleOptimizer("clip(m, 1e-4) * exp(v)", learning_rate=0.3, beta_3=0.99,
                                     seed=7, weight_decay=0.01, jit_compile=False)
    clone = nos_tf.RuleOptimizer.from_config(optimizer.get_config())
    assert clone.get_config() == optimizer.get_config()
    assert clone.rule == optimizer.rule and not clone.jit_compile
    assert (clone.beta_3, clone.seed, clone.weight_decay) == (0.99, 7, 0.01)


def test_a_beta_set_after_construction_is_trained_with_and_saved():
    """As Keras's Adam reads its betas: one set before training was saved by get_config
    but not trained with (a copy made in __init__ was), so a loaded copy trained apart."""
    def trained(optimizer):
        variable = keras.Variable(np.zeros(1, "float32"))
        for gradient in (1.0, -1.0, 0.5):
            optimizer.apply_gradients([(tf.constant([gradient]), variable)])
        return variable.numpy()

    changed = nos_tf.RuleOptimizer("adam", learning_rate=0.1)
    changed.beta_1 = 0.5
    reloaded = nos_tf.RuleOptimizer.from_config(changed.get_config())
    expected = trained(nos_tf.RuleOptimizer("adam", learning_rate=0.1, beta_1=0.5))
    np.testing.assert_array_equal(trained(changed), expected)
    np.testing.assert_array_equal(trained(reloaded), expected)


@pytest.mark.parametrize("rule, argument, value, weight", [
    # m after 1 then -1: -1 at beta_1 0, where at 0.9 it was -0.01 / 0.19.
    ("m", "beta_1", 0.0, 1.0),
    # ld at the second step: 1 - 1/2 with T = 2, where with T = 10 it was 0.9.
    ("g * ld", "decay_steps", 2, -0.5),
])
def test_an_argument_set_after_the_first_step_is_trained_with_from_the_next(
        rule, argument, value, weight):
    """The update had been traced with the old value and kept it, while get_config
    saved the new one (Keras's Adam reads its betas at each step)."""
    optimizer = nos_tf.RuleOptimizer(rule, learning_rate=1.0, decay_steps=10)
    variable = keras.Variable(np.ones(1, "float32"))
    optimizer.apply_gradients([(tf.constant([1.0]), variable)])
    setattr(optimizer, argument, value)
    second = 1.0 if argument == "decay_steps" else -1.0
    optimizer.apply_gradients([(tf.constant([second]), variable)])
    np.testing.assert_allclose(variable.numpy(), [weight], rtol=1e-6)
    assert optimizer.get_config()[argument] == value


def test_jit_compile_set_after_the_first_step_compiles_the_next():
    """The cached update kept the mode it was first traced in."""
    optimizer = nos_tf.RuleOptimizer("g", learning_rate=0.1, jit_compile=False)
    variable = keras.Variable(np.ones(2, "float32"))
    optimizer.apply_gradients([(tf.ones(2), variable)])
    optimizer.jit_compile = True
    optimizer.apply_gradients([(tf.ones(2), variable)])
    [update] = optimizer._compiled_updates.values()
    assert update._jit_compile
    np.testing.assert_allclose(variable.numpy(), [0.8, 0.8], rtol=1e-6)


@pytest.mark.parametrize("argument, value, message", [
    ("beta_2", 1.0, "`beta_2` must be a finite number, in \\[0, 1\\)"),
    ("decay_steps", None, "uses a decay operand"),
    ("decay_steps", 0, "`decay_steps` must be a finite number, positive"),
    ("seed", 1.5, "`seed` must be an integer"),
    ("jit_compile", "no", "`jit_compile` must be True or False"),
])
def test_an_argument_set_after_construction_is_checked_as_in_it(argument, value, message):
    optimizer = nos_tf.RuleOptimizer("g * ld", learning_rate=1.0, decay_steps=10)
    with pytest.raises(ValueError, match=message):
        setattr(optimizer, argument, value)


def test_the_updates_of_many_optimizers_log_no_retracing_warning(caplog):
    """A search or a transfer run makes an optimizer per rule; from the fifth, TensorFlow
    logged "triggered tf.function retracing", counting each one's first trace."""
    with caplog.at_level("WARNING", logger="tensorflow"):
        for rate in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
            variable = keras.Variable(np.ones(2, "float32"))
            nos_tf.RuleOptimizer("g * exp(sign(g) * sign(m))", learning_rate=rate
                                 ).apply_gradients([(tf.ones(2), variable)])
    assert not [record for record in caplog.records if "retracing" in record.getMessage()]


SAVE_AND_STEP = textwrap.dedent("""
    import json, sys
    import numpy as np, keras
    import nos_tf  # registers the serializable optimizers
    x = np.load(sys.argv[2]); y = np.load(sys.argv[3])
    model = keras.models.load_model(sys.argv[1])
    state = [v.numpy().tolist() for v in model.optimizer.variables]
    model.train_on_batch(x, y)
    json.dump({"weights": [w.tolist() for w in model.get_weights()], "state": state,
               "config": str(model.optimizer.rule)}, open(sys.argv[4], "w"))
""")


@pytest.mark.parametrize("optimizer_factory", [
    lambda: nos_tf.RuleOptimizer("drop(m, 0.1) * exp(v) + noise", learning_rate=0.01, seed=5),
    lambda: nos_tf.PowerSign(learning_rate=0.01, sign_decay="linear", decay_steps=100),
])
def test_save_and_load_in_a_fresh_process_takes_the_same_next_step(tmp_path, optimizer_factory):
    model, _ = compile_and_fit(optimizer_factory(), epochs=1)
    path = str(tmp_path / "model.keras")
    model.save(path)
    x, y = classification_data(32, seed=9)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    state = [v.numpy() for v in model.optimizer.variables]
    model.train_on_batch(x, y)
    out = tmp_path / "out.json"
    subprocess.run(
        [sys.executable, "-c", SAVE_AND_STEP, path, str(tmp_path / "x.npy"),
         str(tmp_path / "y.npy"), str(out)],
        check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    loaded = json.loads(out.read_text())
    assert loaded["config"] == str(model.optimizer.rule)
    for ours, theirs in zip(state, loaded["state"]):
        np.testing.assert_array_equal(ours, np.array(theirs, dtype=ours.dtype))
    for ours, theirs in zip(model.get_weights(), loaded["weights"]):
        np.testing.assert_allclose(ours, np.array(theirs), rtol=1e-6, atol=1e-7)
