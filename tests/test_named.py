"""PowerSign and AddSign against TensorFlow's fused kernels, for every sign decay."""

import math

import numpy as np
import pytest
import tensorflow as tf

import nos_tf

STEPS = 100
DECAY_STEPS = 60  # shorter than the run, so every decay reaches its end (and restarts)


def tf1_sign_decay(kind, t, T):
    """TF1 `tf.contrib.opt.sign_decay` formulas, written out independently (PAPER.md)."""
    t = min(t, T)
    if kind is None:
        return 1.0
    if kind == "linear":
        return max(0.0, (T - t) / T)
    if kind == "cosine":  # num_periods = 0.5
        return 0.5 * (1.0 + math.cos(math.pi * 2.0 * 0.5 * t / T))
    if kind == "restart":  # num_periods = 1
        return 0.5 * (1.0 + math.cos(math.pi * ((1.0 * t) % T) / T))
    raise ValueError(kind)


def gradients(shape, steps, seed=0):
    rng = np.random.default_rng(seed)
    # A persistent direction plus noise: signs of g and m agree and disagree.
    base = rng.normal(size=shape)
    return [(base + rng.normal(size=shape)).astype(np.float32) for _ in range(steps)]


def run_ours(optimizer, init, grads):
    var = tf.Variable(init)
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g), var)])
    return var.numpy()


def run_fused(kernel, init, grads, lr, beta, decay, **kwargs):
    var = tf.Variable(init)
    m = tf.Variable(np.zeros_like(init))
    for t, g in enumerate(grads):
        kernel(
            var=var.handle, m=m.handle, lr=tf.constant(lr, tf.float32),
            sign_decay=tf.constant(tf1_sign_decay(decay, t, DECAY_STEPS), tf.float32),
            beta=tf.constant(beta, tf.float32), grad=tf.constant(g), **kwargs,
        )
    return var.numpy()


@pytest.mark.parametrize("sign_decay", [None, "linear", "cosine", "restart"])
@pytest.mark.parametrize("base", [math.e, 2.0])
def test_powersign_matches_fused_kernel(sign_decay, base):
    init = np.random.default_rng(1).normal(size=(7, 5)).astype(np.float32)
    grads = gradients(init.shape, STEPS)
    ours = run_ours(
        nos_tf.PowerSign(learning_rate=0.01, base=base, beta=0.9, sign_decay=sign_decay,
                         decay_steps=DECAY_STEPS),
        init, grads,
    )
    fused = run_fused(
        tf.raw_ops.ResourceApplyPowerSign, init, grads, 0.01, 0.9, sign_decay,
        logbase=tf.constant(math.log(base), tf.float32),
    )
    np.testing.assert_allclose(ours, fused, rtol=1e-6, atol=1e-7)
    assert not np.allclose(ours, init)


@pytest.mark.parametrize("sign_decay", [None, "linear", "cosine", "restart"])
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_addsign_matches_fused_kernel(sign_decay, alpha):
    init = np.random.default_rng(2).normal(size=(11,)).astype(np.float32)
    grads = gradients(init.shape, STEPS, seed=3)
    ours = run_ours(
        nos_tf.AddSign(learning_rate=0.01, alpha=alpha, beta=0.8, sign_decay=sign_decay,
                       decay_steps=DECAY_STEPS),
        init, grads,
    )
    fused = run_fused(
        tf.raw_ops.ResourceApplyAddSign, init, grads, 0.01, 0.8, sign_decay,
        alpha=tf.constant(alpha, tf.float32),
    )
    np.testing.assert_allclose(ours, fused, rtol=1e-6, atol=1e-7)


def decay_operand_at(text, t, decay_steps):
    """The rule's update (lr 1) at step t of a run of `decay_steps` updates."""
    variable = tf.Variable(np.zeros(1, np.float32))
    optimizer = nos_tf.RuleOptimizer(text, learning_rate=1.0, decay_steps=decay_steps,
                                      jit_compile=False)
    optimizer.build([variable])
    optimizer.iterations.assign(t)
    optimizer.apply_gradients([(tf.zeros(1), variable)])
    return -variable.numpy()[0]


@pytest.mark.parametrize("t", [0, 1, 50_000, 99_998, 99_999, 100_000, 100_007])
def test_linear_decay_is_exact_at_the_end_of_a_long_run(t):
    """TF1 counts the remaining steps, (T − t) / T: no cancellation near T, where the
    decayed sign term is all that is left of it."""
    T = 100_000
    np.testing.assert_allclose(
        decay_operand_at("ld", t, T), tf1_sign_decay("linear", t, T), rtol=1e-6, atol=0.0
    )


@pytest.mark.parametrize("optimizer", [nos_tf.PowerSign, nos_tf.AddSign])
@pytest.mark.parametrize("sign_decay", ["linear", "cosine", "restart"])
def test_sign_decay_needs_decay_steps_in_the_users_words(optimizer, sign_decay):
    """The user chose a sign decay, not the rule written from it: the message says so."""
    with pytest.raises(ValueError) as error:
        optimizer(sign_decay=sign_decay)
    assert str(error.value).startswith(
        f"sign_decay={sign_decay!r} needs decay_steps (the number of updates the decay "
        "runs over)")
    assert "rule" not in str(error.value)


def test_sign_decay_must_be_a_known_name():
    for decay_steps in (10, None):  # an unknown name is the first thing wrong
        with pytest.raises(ValueError, match="`sign_decay` must be one of"):
            nos_tf.AddSign(sign_decay="exponential", decay_steps=decay_steps)


@pytest.mark.parametrize("optimizer", [nos_tf.PowerSign, nos_tf.AddSign])
@pytest.mark.parametrize("argument", ["beta_1", "beta_2", "seed", "rule"])
def test_rule_optimizer_arguments_are_refused_by_name(optimizer, argument):
    """They would clash with the rule the optimizer writes or vanish from its config."""
    with pytest.raises(ValueError, match=f"does not take `{argument}`.*`beta`"):
        optimizer(**{argument: 0.5})


@pytest.mark.parametrize("make, problem", [
    (lambda: nos_tf.PowerSign(base=float("inf")), "`base` must be a finite number"),
    (lambda: nos_tf.PowerSign(base="e"), "`base` must be a finite number"),
    (lambda: nos_tf.AddSign(alpha=float("nan")), "`alpha` must be a finite number"),
    (lambda: nos_tf.AddSign(alpha="1"), "`alpha` must be a finite number"),
    (lambda: nos_tf.PowerSign(beta=None), "`beta` must be a finite number, in"),
])
def test_bad_arguments_are_named(make, problem):
    """Not "not enough values to unpack" (inf reached the number printer), a string
    alpha kept in the config, or a None beta's TypeError of a comparison."""
    with pytest.raises(ValueError, match=problem):
        make()


def test_default_names_are_unique_like_keras():
    names = [nos_tf.PowerSign().name, nos_tf.PowerSign().name,
             nos_tf.RuleOptimizer("g").name, nos_tf.RuleOptimizer("g").name]
    assert len(set(names)) == 4


def test_named_config_round_trip():
    optimizer = nos_tf.PowerSign(learning_rate=0.5, base=2.0, sign_decay="cosine", decay_steps=9)
    clone = nos_tf.PowerSign.from_config(optimizer.get_config())
    assert str(clone.rule) == str(optimizer.rule)
    assert clone.get_config() == optimizer.get_config()


@pytest.mark.parametrize("optimizer, argument", [
    (nos_tf.PowerSign, "base"), (nos_tf.PowerSign, "sign_decay"),
    (nos_tf.AddSign, "alpha"), (nos_tf.AddSign, "sign_decay")])
def test_an_argument_written_into_the_rule_is_refused_once_made(optimizer, argument):
    """Set, it changed what get_config saved, not the rule trained with."""
    made = optimizer(learning_rate=0.1)
    with pytest.raises(AttributeError, match=f"{argument} is written into its rule"):
        setattr(made, argument, 2.0)
    assert made.get_config() == optimizer(learning_rate=0.1).get_config() | {
        "name": made.name}


def test_beta_is_the_decay_trained_with_and_saved():
    grads = gradients((5,), 10)
    changed = nos_tf.PowerSign(learning_rate=0.1)
    changed.beta = 0.5
    assert changed.beta_1 == 0.5 and changed.get_config()["beta"] == 0.5
    init = np.zeros(5, np.float32)
    expected = run_ours(nos_tf.PowerSign(learning_rate=0.1, beta=0.5), init, grads)
    np.testing.assert_array_equal(run_ours(changed, init, grads), expected)
    reloaded = nos_tf.PowerSign.from_config(changed.get_config())
    np.testing.assert_array_equal(run_ours(reloaded, init, grads), expected)


def test_paper_rules_parse_and_pass_the_screens():
    assert len(nos_tf.PAPER_RULES) >= 16
    for name, text in nos_tf.PAPER_RULES.items():
        rule = nos_tf.parse(text)
        assert str(nos_tf.parse(str(rule))) == str(rule), name
        assert nos_tf.screen(rule) is None, (name, nos_tf.screen(rule))
