"""The vocabulary of update rules: one table for every operand, unary and binary function.

Bello et al. (2017), section 3, build every update rule from operands, unary functions and
binary functions. This module is the only place that says what each of them computes; the
parser (syntax.py), the controller encoding (tokens.py), the compiler (semantics.py, used by
`RuleOptimizer`) and the docs all read these tables. A new operand is one row here.

Each entry is a small pure function in `keras.ops`, in the spirit of optax's transforms:

* an operand takes the per-variable `Inputs` of one update step (semantics.py) and returns
  a tensor shaped like the variable (or a scalar, for the decays);
* a unary function takes `(inputs, x)` or, when it has a numeric argument, `(inputs, x, c)`;
* a binary function takes `(inputs, x, y)`.

`inputs` is passed to every function so that stochastic ones (noise, drop) can draw their
seeded random numbers; the deterministic ones ignore it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from keras import ops

# x / (y + DIVISION_DELTA): the paper's division, safe at y = 0. Rules read it from
# `Inputs.division_delta`, which an optimizer holds in a variable (see there).
DIVISION_DELTA = 1e-8
# The ε of the `adam` and `rmsprop` operands' denominators: TF1 Adam's default, added to
# the bias-corrected √v̂ as Kingma & Ba write Adam. Not TF1's or Keras's RMSProp, which put
# their ε (1e-10, 1e-7) under the square root of an uncorrected average with β = 0.9.
ADAPTIVE_EPSILON = 1e-8
# noise ~ N(0, NOISE_VARIANCE); noise_t ~ N(0, 1 / (1 + t)^NOISE_DECAY) (Neelakantan et al.).
NOISE_VARIANCE = 0.01
NOISE_DECAY = 0.55
# Periods of the cyclical and restart decays: TF1 `sign_decay.py` defaults. With one period
# the restart decay equals the cosine decay before T (and is 1 from T on): in the search
# space they are the same operand when T is the run's length, as the proxy's and transfer's
# are. Kept for fidelity to TF1 (the paper's PowerSign-rd); more periods would restart.
COSINE_DECAY_PERIODS = 0.5
RESTART_DECAY_PERIODS = 1.0


# --- Decay schedules of t (updates done so far) over T (decay steps), TF1 sign_decay.py. ---


def linear_decay(t, T):
    """ld = max(0, (T − min(t, T)) / T): 1 at the start, 0 from step T on.

    Computed as TF1 does, remaining steps over T: exact for whole t and T, and so exact
    to float32 precision near the end; 1 − t/T cancels there (T = 1e5, one step before
    the end: 1.00136e-5 instead of 1e-5).
    """
    return (T - ops.minimum(t, T)) / T


def cosine_decay(t, T, periods=COSINE_DECAY_PERIODS):
    """cd = 0.5 (1 + cos(2π · periods · min(t, T) / T)); periods 0.5 is a half cosine."""
    fraction = ops.minimum(t, T) / T
    return 0.5 * (1.0 + ops.cos(math.pi * 2.0 * periods * fraction))


def restart_decay(t, T, periods=RESTART_DECAY_PERIODS):
    """rd = 0.5 (1 + cos(π · ((periods · min(t, T)) mod T) / T)): cosine with warm restarts."""
    fraction = ops.mod(periods * ops.minimum(t, T), T) / T
    return 0.5 * (1.0 + ops.cos(math.pi * fraction))


@dataclasses.dataclass(frozen=True)
class OperandSpec:
    """An input of the rule.

    Attributes:
      name: its name in rule text.
      doc: what it is, for error messages and docs.
      compute: `inputs -> tensor`.
      moments: the running averages it reads, so the optimizer keeps only those.
      controller_forms: rule texts the controller may choose for this operand (the paper's
        menu: it offers sign(g) and four scalings of w, not the bare operands).
      needs_decay_steps: whether it reads T, the total number of updates.
      spelled_out: the same numbers, bit for bit, as a product or quotient of other words
        of the language (`m / sqrt(v)` for adam): the fingerprint counts a rule that
        spells the operand out as one that names it, which the controller can write too.
    """

    name: str
    doc: str
    compute: Callable
    moments: tuple[str, ...] = ()
    controller_forms: tuple[str, ...] | None = None
    needs_decay_steps: bool = False
    spelled_out: str | None = None

    @property
    def forms(self) -> tuple[str, ...]:
        """The texts this operand contributes to the controller's operand menu."""
        return (self.name,) if self.controller_forms is None else self.controller_forms


@dataclasses.dataclass(frozen=True)
class UnarySpec:
    """A unary function; `param` names its numeric argument, `choices` the controller's menu."""

    name: str
    doc: str
    apply: Callable
    param: str | None = None
    choices: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class BinarySpec:
    """A binary function written infix; `precedence` is Python's, for printing and parsing."""

    symbol: str
    doc: str
    apply: Callable
    precedence: int
    right_associative: bool = False


def _drop(inputs, x, p):
    """Zero each element with probability p (no rescaling), seeded and stateless.

    Selected, not multiplied by a 0/1 mask: a dropped ±inf (log|0|, an overflowed exp)
    or NaN is 0, where 0 · inf would be NaN and spoil the weight it was dropped from.
    A dropped finite element is x · 0, signed like x, so that `drop(-x, p)` and
    `-drop(x, p)` stay the same numbers (fingerprints hash "-0" and "0" apart).

    Selected in one dimension: TensorFlow's CPU kernel of a select takes tensors of up
    to rank 8, even of one shape, and a rank-9 variable's update failed without XLA.
    """
    keep = ops.reshape(inputs.uniform(ops.shape(x)) >= p, [-1])
    flat = ops.reshape(x, [-1])
    return ops.reshape(ops.where(keep, flat, ops.nan_to_num(flat) * 0.0), ops.shape(x))


def _adam(inputs):
    return inputs.m / (ops.sqrt(inputs.v) + ADAPTIVE_EPSILON)


def _rmsprop(inputs):
    return inputs.g / (ops.sqrt(inputs.v) + ADAPTIVE_EPSILON)


OPERANDS: dict[str, OperandSpec] = {
    spec.name: spec
    for spec in (
        OperandSpec("g", "the gradient", lambda i: i.g, controller_forms=("g", "sign(g)")),
        OperandSpec("g2", "the squared gradient g²", lambda i: i.g * i.g,
                    spelled_out="g * g"),
        OperandSpec("g3", "the cubed gradient g³", lambda i: i.g * i.g * i.g,
                    spelled_out="g * g * g"),
        OperandSpec(
            "m", "bias-corrected running average of g (β₁ = 0.9)", lambda i: i.m,
            moments=("m",), controller_forms=("m", "sign(m)"),
        ),
        OperandSpec(
            "v", "bias-corrected running average of g² (β₂ = 0.999)", lambda i: i.v,
            moments=("v",),
        ),
        OperandSpec(
            "y", "bias-corrected running average of g³ (β₃ = 0.999)", lambda i: i.y,
            moments=("y",),
        ),
        OperandSpec(
            "w", "the weights (the paper offers 1e-4 w ... 1e-1 w)", lambda i: i.w,
            controller_forms=("1e-4 * w", "1e-3 * w", "1e-2 * w", "1e-1 * w"),
        ),
        OperandSpec(
            "adam", "Adam's update m / (√v + 1e-8)", _adam, moments=("m", "v"),
            spelled_out="m / sqrt(v)",
        ),
        OperandSpec(
            "rmsprop", "RMSProp's update g / (√v + 1e-8)", _rmsprop, moments=("v",),
            spelled_out="g / sqrt(v)",
        ),
        OperandSpec(
            "noise", "Gaussian noise N(0, 0.01)",
            lambda i: i.normal(math.sqrt(NOISE_VARIANCE)),
        ),
        OperandSpec(
            "noise_t", "annealed noise N(0, 1 / (1 + t)^0.55)",
            lambda i: i.normal(ops.power(1.0 + i.t, -0.5 * NOISE_DECAY)),
        ),
        OperandSpec(
            "ld", "linear decay 1 − t/T, 0 from T on", lambda i: linear_decay(i.t, i.T),
            needs_decay_steps=True,
        ),
        OperandSpec(
            "cd", "cyclical (cosine) decay 0.5 (1 + cos(π t/T)), 0 from T on",
            lambda i: cosine_decay(i.t, i.T), needs_decay_steps=True,
        ),
        OperandSpec(
            "rd", "restart decay 0.5 (1 + cos(π (min(t, T) mod T)/T)): cd until T, then 1",
            lambda i: restart_decay(i.t, i.T), needs_decay_steps=True,
        ),
    )
}

# The operands and functions that draw random numbers (all others are deterministic).
RANDOM_NAMES = frozenset({"noise", "noise_t", "drop"})

# Numbers the controller may pick as operands (the paper's constants 1 and 2).
CONSTANT_OPERANDS: tuple[float, ...] = (1.0, 2.0)

UNARIES: dict[str, UnarySpec] = {
    spec.name: spec
    for spec in (
        UnarySpec("neg", "−x", lambda i, x: -x),
        UnarySpec("exp", "eˣ", lambda i, x: ops.exp(x)),
        UnarySpec("log", "log|x|", lambda i, x: ops.log(ops.abs(x))),
        UnarySpec("sqrt", "√|x|", lambda i, x: ops.sqrt(ops.abs(x))),
        UnarySpec("sign", "sign(x), sign(0) = 0", lambda i, x: ops.sign(x)),
        UnarySpec(
            "clip", "clip x to [−c, c]", lambda i, x, c: ops.clip(x, -c, c),
            param="c", choices=(1e-5, 1e-4, 1e-3),
        ),
        UnarySpec(
            "drop", "zero each element with probability p", _drop,
            param="p", choices=(0.1, 0.3, 0.5),
        ),
    )
}

BINARIES: dict[str, BinarySpec] = {
    spec.symbol: spec
    for spec in (
        BinarySpec("+", "x + y", lambda i, x, y: x + y, precedence=1),
        BinarySpec("-", "x − y", lambda i, x, y: x - y, precedence=1),
        BinarySpec("*", "x · y", lambda i, x, y: x * y, precedence=2),
        BinarySpec(
            "/", "x / (y + 1e-8)", lambda i, x, y: x / (y + i.division_delta), precedence=2
        ),
        BinarySpec(
            "**", "xʸ", lambda i, x, y: ops.power(x, y), precedence=4,
            right_associative=True,
        ),
    )
}

# Python's precedence of unary minus sits between `*` and `**`: -x ** y is -(x ** y).
NEGATION_PRECEDENCE = 3
ATOM_PRECEDENCE = 5


def moments_of(names) -> tuple[str, ...]:
    """The running averages that the given operand names need, in a fixed order."""
    needed = {moment for name in names for moment in OPERANDS[name].moments}
    return tuple(sorted(needed))


def describe() -> str:
    """The vocabulary as plain text, made from the tables (used by `python -m nos_tf.rules`)."""
    lines = ["Operands:"]
    lines += [f"  {s.name:8s} {s.doc}" for s in OPERANDS.values()]
    lines += ["  numbers  2, 0.3, 1e-4, ...", "Unary functions:"]
    for s in UNARIES.values():
        form = "-x" if s.name == "neg" else (f"{s.name}(x, {s.param})" if s.param else f"{s.name}(x)")
        lines.append(f"  {form:12s} {s.doc}")
    lines.append("Binary functions:")
    lines += [f"  x {s.symbol} y{' ' * (8 - len(s.symbol))} {s.doc}" for s in BINARIES.values()]
    return "\n".join(lines)
