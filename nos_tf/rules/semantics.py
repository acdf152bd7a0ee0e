"""What a rule computes: the update direction from one step's inputs, and the tools that
need to run rules without training anything (fingerprints and pre-training screens).

`RuleOptimizer` and the probes here share `update_moments` and `direction`, so a rule
means the same in a fingerprint as in training.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import numpy as np
import tensorflow as tf
from keras import ops

from nos_tf.rules import syntax, vocab
from nos_tf.rules.expr import (
    BinOp, Call, Const, Expr, Operand, in_canonical_order, is_quotient, quotient, unsigned_quotient,
    walk)

# Random streams: one per (variable, random node) pair and update step.
_STREAM_STRIDE = 7919

RANDOM_ALGORITHM = "philox"
"""The generator of the random operands and their seeds, named rather than left to TF's
default, "auto_select"; read when a rule is traced.

Both are Philox on CPU and GPU, and outside XLA they draw the same numbers. But
"auto_select" works out the generator's key and counter from the seed with an op of its
own, and inside an XLA computation — RuleOptimizer's compiled update — XLA's CPU code fuses
that work into the loop over the numbers drawn, once per number: one update of the proxy's
child network under `drop(g, 0.3)` took 72 ms, against 5 ms named and 1.5 ms for PowerSign
(`python -m nos_tf.benchmarks.random_operands`), beside a training step of ~55 ms. Named,
the key and counter are worked out once. Under XLA the two draw different numbers for most
seeds, as XLA and TF's own kernels already did."""


@dataclasses.dataclass
class Inputs:
    """Everything a rule may read in one update of one variable.

    Attributes:
      g: the gradient. w: the variable's value before the update.
      moments: bias-corrected running averages by name (`m`, `v`, `y`), only those the
        rule reads.
      t: updates done before this one (0 at the first update), a float scalar.
      T: decay steps for ld/cd/rd, or None when the rule has no decay operand.
      seed: an int32 scalar tensor; with the step it makes the random numbers stateless,
        so a seeded run is reproducible and a restored optimizer draws the same numbers.
      stream: distinguishes variables (and their random nodes) that share the seed.
      step: `t` as an integer tensor (the optimizer's iteration count), folded into the
        random numbers' seeds; None: `t`'s value. A float32 `t` holds every integer only
        up to 2**24, after which steps would share their random numbers.
      division_delta: the δ of `x / (y + δ)`. In a compiled update, a variable's value:
        as a constant, TensorFlow's graph optimizer and XLA rewrite `(s - 1) + δ` as
        `s + (δ - 1)`, which float32 rounds to `s - 1`, so that `g / (sign(g) - 1)` divided
        by exactly 0 in training where the screen and fingerprints (eager) saw δ.
    """

    g: tf.Tensor
    w: tf.Tensor
    moments: dict
    t: tf.Tensor
    T: float | None = None
    seed: tf.Tensor | int = 0
    stream: int = 0
    step: tf.Tensor | None = None
    division_delta: tf.Tensor | float = vocab.DIVISION_DELTA
    _draws: int = 0

    @property
    def m(self):
        return self.moments["m"]

    @property
    def v(self):
        return self.moments["v"]

    @property
    def y(self):
        return self.moments["y"]

    def _draw(self, distribution, shape):
        """Random numbers of `distribution` (a stateless TF random op) and `shape`, from a
        seed of their own for each (seed, variable, random node, step).

        The seed and the stream are the two halves of the key, so no other seed or stream
        shares it (a sum of the two made seed 1's first draw seed 0's second); the step
        is folded in.
        """
        self._draws += 1
        stream = self.stream * _STREAM_STRIDE + self._draws
        key = tf.stack([tf.cast(self.seed, tf.int32), tf.constant(stream, tf.int32)])
        step = tf.cast(self.t if self.step is None else self.step, tf.int32)
        if tf.executing_eagerly():  # A shape as a tensor: one trace for every shape.
            return _draw_in_a_graph(distribution, self.g.dtype)(
                tf.convert_to_tensor(shape, tf.int32), key, step)
        return _fold_in_and_draw(distribution, shape, key, step, dtype=self.g.dtype)

    def normal(self, stddev):
        """N(0, stddev²) shaped like the gradient (Keras's stateless TF random op)."""
        sample = self._draw(tf.random.stateless_normal, tf.shape(self.g))
        return sample * ops.cast(stddev, self.g.dtype)

    def uniform(self, shape):
        return self._draw(tf.random.stateless_uniform, shape)


def _fold_in_and_draw(distribution, shape, key, step, dtype):
    """`Inputs._draw`'s numbers: the step folded into the key, then the draw."""
    seed = tf.random.experimental.stateless_fold_in(key, step, alg=RANDOM_ALGORITHM)
    return distribution(shape, seed, dtype=dtype, alg=RANDOM_ALGORITHM)


@functools.cache
def _draw_in_a_graph(distribution, dtype: tf.DType):
    """`_fold_in_and_draw` of `distribution` and `dtype` as one TensorFlow graph, for
    rules run eagerly (the screen's and the fingerprints' probes; RuleOptimizer traces its
    update): eagerly, TensorFlow works out Philox's key and counter from a seed
    (`fold_in`, then the draw) in Python, op by op: 2.9 ms a draw of 64 numbers against
    0.7 ms as a graph, and half the screen of a rule with random operands (RANDOM_DRAWS
    runs on the probes) went there. The same integer ops and kernels in a graph: the same
    numbers.

    One function for each distribution and dtype, each traced for at most two shapes
    (reduce_retracing): TensorFlow warned of excessive retracing once a process had
    drawn in four dtypes through one."""
    return tf.function(functools.partial(_fold_in_and_draw, distribution, dtype=dtype),
                       reduce_retracing=True)


def direction(expr: Expr, inputs: Inputs):
    """Evaluates the rule: the update is `w ← w − lr · direction`."""
    if isinstance(expr, Const):
        # Not ops.cast: it would round a Python float to float32 before a float64 rule.
        return ops.convert_to_tensor(expr.value, inputs.g.dtype)
    if isinstance(expr, Operand):
        return ops.cast(vocab.OPERANDS[expr.name].compute(inputs), inputs.g.dtype)
    if isinstance(expr, Call):
        spec = vocab.UNARIES[expr.name]
        x = direction(expr.arg, inputs)
        if spec.param:
            return spec.apply(inputs, x, ops.convert_to_tensor(expr.param, inputs.g.dtype))
        return spec.apply(inputs, x)
    assert isinstance(expr, BinOp)
    left = direction(expr.left, inputs)
    right = direction(expr.right, inputs)
    return vocab.BINARIES[expr.op].apply(inputs, left, right)


@dataclasses.dataclass(frozen=True)
class MomentDecays:
    """β of each running average: m of g, v of g², y of g³."""

    m: float = 0.9
    v: float = 0.999
    y: float = 0.999

    def of(self, name: str) -> float:
        return getattr(self, name)


_MOMENT_POWERS = {"m": 1, "v": 2, "y": 3}


def update_moments(g, moments, decays: MomentDecays):
    """New raw averages: x ← β·x + (1 − β)·g^k. Returns {name: new value}."""
    updated = {}
    for name, value in moments.items():
        beta = ops.convert_to_tensor(decays.of(name), g.dtype)
        updated[name] = beta * value + (1.0 - beta) * g ** _MOMENT_POWERS[name]
    return updated


def bias_corrected(moments, step, decays: MomentDecays):
    """x̂ = x / (1 − β^step), with `step` counting this update (1 at the first)."""
    return {
        name: value / (1.0 - ops.power(ops.convert_to_tensor(decays.of(name), value.dtype), step))
        for name, value in moments.items()
    }


# --- Running a rule on probe inputs ---------------------------------------------------------

PROBE_STEPS = 6
PROBE_SIZE = 64
PROBE_DECAY_STEPS = 10.0
FINGERPRINT_DECAY_STEPS = 3.0
"""T of the fingerprint's second probe: its last steps are past T, where `ld` and `cd`
are 0 and `rd` is 1 (with T = PROBE_DECAY_STEPS, `g * sign(ld)` was `g`, `cd` was `rd`)."""
PROBE_GRADIENT_SCALE = 0.1
_PROBE_SEED = 1234


@dataclasses.dataclass(frozen=True)
class ProbeRun:
    """The directions a rule produced over PROBE_STEPS updates, with the gradients."""

    directions: np.ndarray  # (PROBE_STEPS, PROBE_SIZE)
    gradients: np.ndarray  # (PROBE_STEPS, PROBE_SIZE)


FINGERPRINT_SCALE_DECADES = (-6.0, 2.0)
"""log10 of the smallest and largest gradient scale of the fingerprint's second probe.

Above 1 because scale-dependent rules change there: `g * sign(2 - log(g2))` is g below
|g| = e and −g above, and shared `g`'s fingerprint while the probes stopped at 1.

The screen's probes (scales around 0.1) put every gradient and moment above the clip
thresholds 1e-5 ... 1e-3, where clip(x, c) = c · sign(x): on them `clip(m, 1e-4)` and
`clip(sign(m), 1e-4)` agreed, and the fingerprint cache told one the other's reward (0.46
for 0.54 in `nos_tf.benchmarks.search_efficiency`), though they differ wherever gradients
are small, as most of a ConvNet's are. The same holds for scale-free operands:
`clip(adam, 1e-4)` and `clip(sign(m), 1e-4)` differ only where |m| < 1e-4 · √v (0.54
against 0.46 there too), `clip(rmsprop, 1e-4)` and `clip(sign(g), 1e-4)` where
|g| < 1e-4 · √v, which the screen's probes never reach.
"""


def probe_gradients(variant: int = 0, scale_decades: tuple[float, float] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Gradients like a real run's: a persistent direction plus per-step noise; and weights.

    A persistent direction lets momentum-style rules (m, adam) look like what they are;
    independent gradients each step would make them look random. `scale_decades`
    (log10 bounds) spreads the coordinates' scales evenly over those orders of magnitude
    instead, and makes the second and fourth steps' gradients small against the history;
    it also holds the coordinates of `_add_edge_coordinates` (zero, tiny and large inputs).
    """
    rng = np.random.default_rng(_PROBE_SEED + variant)
    base = rng.normal(size=PROBE_SIZE)
    noise = rng.normal(size=(PROBE_STEPS, PROBE_SIZE))
    if scale_decades is None:
        # Per-coordinate scales around 0.1: the size of real gradients, so that exp(g³)
        # is as finite here as it is in training.
        scale = PROBE_GRADIENT_SCALE * np.exp(rng.normal(size=PROBE_SIZE) * 0.5)
    else:
        scale = 10.0 ** np.linspace(*scale_decades, PROBE_SIZE)
    gradients = scale * (base + 0.5 * noise)
    if scale_decades is not None:
        # Where scale-free rules are small: the second gradient all but cancels the first
        # in m (|m| ≪ √v: adam), and the fourth is tiny against the first (|g| ≪ √v:
        # rmsprop), each by a factor spread over six decades.
        factors = 10.0 ** np.linspace(-6.0, 0.0, PROBE_SIZE)
        gradients[1] = -MomentDecays().m * gradients[0] * (1.0 + rng.permutation(factors))
        gradients[3] = gradients[0] * rng.permutation(factors)
    weights = np.random.default_rng(_PROBE_SEED - 1).normal(size=PROBE_SIZE)
    if scale_decades is not None:
        _add_edge_coordinates(gradients, weights, rng)
    return gradients.astype(np.float32), weights.astype(np.float32)


def _add_edge_coordinates(gradients, weights, rng):
    """Coordinates that real training has and Gaussian probes never draw: a gradient of
    exactly 0 at every step (a dead ReLU's: m, v and y are 0 there too) and at every other
    step (an embedding row a batch does not use), and one of 1e-20 (g3 underflows to 0,
    so sign(g3) is not sign(g)); a weight of exactly 0 (Keras's initial biases and batch
    norm's beta), and of ±100. Without them `sign(1e-4 * w) ** 2 * g` shared `g`'s
    fingerprint, and `m * sign(g) ** 2` `m`'s, though the first never moves a zero bias
    and the second no weight in a step without its gradient.
    """
    zero_gradient, sparse_gradient, tiny_gradient, zero_weight, large_weight = np.split(
        rng.permutation(PROBE_SIZE)[:14], [3, 6, 8, 12])
    gradients[:, zero_gradient] = 0.0
    gradients[1::2, sparse_gradient] = 0.0
    gradients[:, tiny_gradient] = 1e-20 * np.sign(gradients[:, tiny_gradient])
    weights[zero_weight] = 0.0
    weights[large_weight] = [100.0, -100.0]


def run_on_probes(expr: Expr, variant: int = 0,
                  scale_decades: tuple[float, float] | None = None,
                  decay_steps: float = PROBE_DECAY_STEPS, seed: int = _PROBE_SEED) -> ProbeRun:
    """Runs the rule (with its moments) for PROBE_STEPS updates on fixed probe inputs
    (`probe_gradients(variant, scale_decades)`), with T = `decay_steps` and the random
    operands drawn from `seed`.

    The weights are held fixed, so the rule alone decides the outputs. Raises whatever
    the rule raises (for example a shape error of a malformed rule).
    """
    from nos_tf.rules.rule import operand_names  # local: rule.py imports this module

    names = operand_names(expr)
    decays = MomentDecays()
    gradients, weights = probe_gradients(variant, scale_decades)
    w = tf.constant(weights)
    moments = {name: tf.zeros_like(w) for name in vocab.moments_of(names)}
    outputs = []
    for step in range(PROBE_STEPS):
        g = tf.constant(gradients[step])
        moments = update_moments(g, moments, decays)
        inputs = Inputs(
            g=g, w=w, moments=bias_corrected(moments, float(step + 1), decays),
            t=tf.constant(float(step)), T=decay_steps, seed=seed,
        )
        out = direction(expr, inputs)
        outputs.append(np.broadcast_to(np.asarray(out, dtype=np.float32), w.shape))
    return ProbeRun(np.stack(outputs), gradients)


_RULE_FAILURES = (tf.errors.OpError, ValueError, TypeError)
"""What running a rule that cannot run raises (a shape or type error of a malformed rule):
the fingerprint and the screen say so rather than raise."""


_NO_STEP = 1e-30
"""Directions this small move no float32 weight above 1e-23 in size at any learning rate
of the grid (≤ 1): the fingerprint does not tell apart orders of computation that differ
only there (`(g * m) / v` underflows to 0 where `(g / v) * m` is 1e-32, for g of 1e-20)."""


def fingerprint_of(expr: Expr) -> str:
    """A behavioural hash: equal for rules that compute the same numbers on the probes:
    the screen's, and gradients spread over FINGERPRINT_SCALE_DECADES with steps past
    T = FINGERPRINT_DECAY_STEPS and random operands of another seed (a scalar's `drop`
    draws one number a step: 6 draws alone often kept every one).

    Outputs are rounded to 5 significant digits before hashing, so rules that differ only
    by the order of floating-point operations (g·e^x vs e^x·g) share a fingerprint. For
    re-associated sums and products (`(a + b) + c`, `a + (b + c)`, `(c + a) + b`, and
    `-(a * b) * c`, `a * -(b * c)` with the negation anywhere in the product), where
    one output of the 768 on a rounding boundary split about half of such triples, the
    numbers hashed are those of the rule's sums and products taken in one canonical order
    (`expr.in_canonical_order`), which all of them share bit for bit; so are those of
    quotients within products (`g * m / v`, `g / v * m`). That order is used only where it
    agrees with the rule's own everywhere, to 1e-4 or within `_NO_STEP`: where it does not
    (a sum that cancels, a product that overflows in one order only, random operands drawn
    in another order), the rule trains differently too, and its own numbers are hashed.
    Before that order is taken, operands spelled out in a product are named
    (`with_operands_named`: `m / sqrt(v) * g` is `adam * g`, whose numbers it computes).

    Like any hash of probes, it sees a rule only where the probes go. The decays are seen
    at the probes' steps, t/T of 0, 0.1, ..., 0.5 and 0, 1/3, 2/3, 1, 4/3, 5/3: rules that
    differ only between those share a fingerprint, and the evaluator's cache answers one
    with the other's reward. That takes constants typed by hand (`g * sign(ld - 0.49)` and
    `g * sign(ld - 0.34)`); of the one-unit rules of the token space's decays and
    constants, no two did.
    """
    try:
        directions = _fingerprint_directions(expr)
        canonical = in_canonical_order(with_operands_named(expr))
        if canonical != expr:
            reordered = _fingerprint_directions(canonical)
            if np.allclose(reordered, directions, rtol=1e-4, atol=_NO_STEP, equal_nan=True):
                directions = reordered
    except _RULE_FAILURES as error:
        return "invalid:" + hashlib.sha256(str(error).encode()).hexdigest()[:16]
    # + 0.0 makes -0 0: "%.5g" tells them apart, the update does not (w - lr * ±0 is w).
    rounded = np.char.mod("%.5g", directions.ravel().astype(np.float64) + 0.0)
    return hashlib.sha256(" ".join(rounded.tolist()).encode()).hexdigest()[:16]


def with_operands_named(expr: Expr) -> Expr:
    """`expr` with the operands that its products and quotients spell out (the
    vocabulary's `spelled_out`: `m / sqrt(v)`, `g * g`) named instead: `m / sqrt(v) * g`
    is `adam * g`, `g * g * sqrt(2)` is `g2 * sqrt(2)`, and `g2 * g2` is `g3 * g`.

    A rule that names an operand and one that spells it out compute, in one canonical
    order, the same numbers; in their own orders the last bits differed, and the
    fingerprint split them (27 of 828 such pairs among one-unit rules).
    """
    if is_quotient(expr):
        factors, divisors, negations = unsigned_quotient(expr)
        factors = [with_operands_named(factor) for factor in factors]
        divisors = [with_operands_named(divisor) for divisor in divisors]
        if len(factors) + len(divisors) > 1:
            factors, divisors = _named(factors, divisors)
        return quotient(factors, divisors, negations)
    if isinstance(expr, Call):
        return Call(expr.name, with_operands_named(expr.arg), expr.param)
    if isinstance(expr, BinOp):
        return BinOp(expr.op, with_operands_named(expr.left), with_operands_named(expr.right))
    return expr


def _named(factors: list[Expr], divisors: list[Expr]) -> tuple[list[Expr], list[Expr]]:
    """One product's factors and divisors with each spelled-out operand named: those
    among the factors first taken apart (`g * rmsprop` is g·g / √v), then the longest
    spellings named first, as often as they are there. Taken apart, two spellings of one
    product are named alike: only g2 and g3 were, and `g * rmsprop` stayed apart from
    `g2 / sqrt(v)`. A divisor is left whole: `1 / rmsprop` is not √v / g."""
    spellings = _spelled_out_operands()
    spelled = [factor for factor in factors
               if isinstance(factor, Operand) and factor.name in spellings]
    factors = [factor for factor in factors if factor not in spelled]
    divisors = list(divisors)
    for operand in spelled:
        factors += spellings[operand.name][0]
        divisors += spellings[operand.name][1]
    for name, (needed_factors, needed_divisors) in spellings.items():
        while _holds(factors, needed_factors) and _holds(divisors, needed_divisors):
            for part in needed_factors:
                factors.remove(part)
            for part in needed_divisors:
                divisors.remove(part)
            factors.append(Operand(name))
    return factors, divisors


def _holds(parts: list[Expr], needed: list[Expr]) -> bool:
    return all(parts.count(part) >= needed.count(part) for part in needed)


@functools.cache
def _spelled_out_operands() -> dict[str, tuple[list[Expr], list[Expr]]]:
    """Each operand the vocabulary spells out, as that spelling's factors and divisors,
    the longest spelling first (g3 before g2)."""
    spellings = {}
    for spec in vocab.OPERANDS.values():
        if spec.spelled_out is not None:
            factors, divisors, _ = unsigned_quotient(syntax.parse(spec.spelled_out))
            spellings[spec.name] = (factors, divisors)
    return dict(sorted(spellings.items(), key=lambda item: -sum(map(len, item[1]))))


def _fingerprint_directions(expr: Expr) -> np.ndarray:
    """The directions the fingerprint hashes: the screen's probes, then the second probe."""
    return np.concatenate([
        run_on_probes(expr).directions,
        run_on_probes(expr, scale_decades=FINGERPRINT_SCALE_DECADES,
                      decay_steps=FINGERPRINT_DECAY_STEPS, seed=_PROBE_SEED + 1).directions])


# --- Screens: reasons to skip training a rule (ENOS, Lion) ------------------------------------

MIN_DESCENT_COSINE = 0.1
"""The least mean cosine(update, g) on the probes that counts as pointing downhill.

Not 0: a direction that ignores the gradient still has a cosine of about ±1/√64 = ±0.125
with one 64-coordinate probe gradient, by chance. Measured on 100 rules sampled from the
token space (`nos_tf.benchmarks.throughput`'s list), rules that are a constant plus a
negligible term (`sqrt(2) + clip(sign(g), 1e-4)`, `exp(v)`, `sqrt(1) - log(v)`) scored
0.001–0.08; of the paper's rules the least aligned, `exp(g) - exp(m)`, scores 0.28, and
sign-like and momentum rules 0.5–1.

The test has false negatives on the paper's child network: trained the naive way
(`nos_tf.benchmarks.throughput`), 8 of the 20 sampled rules that reach 0.2 were rules it
rejected (before RANDOM_DRAWS), such as `clip(g3, 1e-3) - sqrt(sign(m))` (0.70),
`sqrt(adam)` (0.56) and `clip(adam, 1e-3) + drop(noise_t, 0.3)` (0.71): a constant, a
sign-blind magnitude or noise on top of a weak descent term, or no descent at all. The
network evidently tolerates them (batch norm's and the softmax's invariances are a likely
reason; not investigated). A cosine on the probes cannot tell these from rules that stay
at chance.

Trained by the evaluator without the screen, 7 of the list's 33 rules it rejected as not
descending reach 0.2: `clip(g3, 1e-3) - sqrt(sign(m))` 0.72, `clip(adam, 1e-3) +
drop(noise_t, 0.3)` 0.71 (since passed: RANDOM_DRAWS), `sqrt(adam)` 0.56, `clip(g2, 1e-5)
** -(clip(g3, 1e-4) * exp(adam))` 0.49, `drop(g2, 0.3) + sqrt(g)` 0.41, `drop(0.1 * w,
0.1) * sign(m)` 0.34 and `g2 - drop(g3, 0.5)` 0.28; the other 26 stay at chance or
diverge. Removing the direction's mean (a drift shared by all coordinates) before the
cosine would pass the first and fourth, and `sqrt(2) + clip(sign(g), 1e-4)`, which
diverges. The other four have cosines from −0.09 to 0.08 however they are read, as do 10
rules that stay at chance or diverge: only training tells those apart.
"""


RANDOM_DRAWS = 16
"""Draws of a rule's random operands (noise, noise_t, drop) that the descent test averages
the directions over: a rule that descends in expectation, as gradient noise (Neelakantan
et al., 2015) and dropped coordinates do, points downhill. On one draw,
`clip(adam, 1e-3) + drop(noise_t, 0.3)` had cosine 0.051 and was rejected; averaged over
16 it has 0.144, and it trains to 0.71 on the throughput benchmark's setup."""


def screen_expr(expr: Expr, min_cosine: float = MIN_DESCENT_COSINE) -> str | None:
    """Why the rule is not worth training, or None. No training: milliseconds, and a few
    hundred for a rule with random operands (RANDOM_DRAWS runs on the probes).

    Rejects rules that fail on the probes, give NaN/Inf there, ignore the gradient (the
    same output for two different gradient sequences), or do not point downhill: mean
    cosine(direction, g) over the probe steps at most `min_cosine` (Real/ENOS's descent
    test), the direction averaged over RANDOM_DRAWS draws of its random operands. The
    update is w − lr · direction, so a descent direction has positive cosine.

    The further draws are made only for a rule that the first passed: a constant rule
    with noise (34 of 105 rules with random operands sampled from the token space) is
    refused in milliseconds, where the draws took hundreds; one that is NaN on a later
    draw only is refused for that.
    """
    not_finite = "produces NaN/Inf on probe inputs"
    try:
        run = run_on_probes(expr)
        other = run_on_probes(expr, variant=1)
        if not np.all(np.isfinite(run.directions)):
            return not_finite
        if np.allclose(run.directions, other.directions, rtol=1e-5, atol=1e-12):
            return "constant: does not depend on the gradient"
        draws = [run.directions]
        if any(isinstance(node, (Operand, Call)) and node.name in vocab.RANDOM_NAMES
               for node in walk(expr)):
            draws += [run_on_probes(expr, seed=_PROBE_SEED + k).directions
                      for k in range(1, RANDOM_DRAWS)]
    except _RULE_FAILURES as error:
        return f"fails to build: {error}"
    if not all(np.all(np.isfinite(directions)) for directions in draws[1:]):
        return not_finite
    # In float64: a finite float32 direction above ~1e19 overflows float32's sum of
    # squares, and `g * 1e30` had cosine 0 ("not a descent direction") and a numpy warning.
    directions = np.mean(np.asarray(draws, dtype=np.float64), axis=0)
    norms = np.linalg.norm(directions, axis=1) * np.linalg.norm(run.gradients, axis=1)
    cosines = np.sum(directions * run.gradients, axis=1) / np.maximum(norms, 1e-300)
    mean_cosine = float(np.mean(cosines))
    if mean_cosine <= min_cosine:
        return f"not a descent direction: mean cosine(update, g) = {mean_cosine:.3f}"
    return None
