"""Random operands: RuleOptimizer's update drawing by Philox named, and by TF's default.

    python -m nos_tf.benchmarks.random_operands [--steps=10] [--rounds=3]

Rules with random operands (`noise`, `noise_t`, `drop`) draw a number per weight each
update. RuleOptimizer names the generator (`nos_tf.rules.semantics.RANDOM_ALGORITHM`,
Philox); with TF's default, "auto_select", XLA's CPU code works out the generator's key
and counter again for every number drawn. This times one update of the proxy's child
network (its ~260k weights, fixed gradients) under PowerSign and under two random rules
drawing each way, side by side in interleaved rounds, and prints the median of each with
its ratio to PowerSign's. On one core of this project's 2-core machine, beside other load:

    rule                                   ms  × PowerSign
    g * exp(sign(g) * sign(m))           1.50         1.00
    drop(g, 0.3)                         5.01         3.34
    drop(g, 0.3), auto_select           71.57        47.69
    g + noise                            9.27         6.18
    g + noise, auto_select              75.56        50.35
    drop(g, 0.3): auto_select takes 14.3x as long as Philox named
    g + noise: auto_select takes 8.1x as long as Philox named

A training step of the child (batch 100) takes ~55 ms, so under auto_select a random rule
trained about twice as slowly as PowerSign; named, ~10% more. These are RuleOptimizer's
default update, one XLA computation (what `model.fit` runs). Without it
(`jit_compile=False`, how the search's evaluator has run rules since throughput's
REVISION 5) TensorFlow's own kernels draw, and the two generators took about as long:
drop 2.66 ms named against 2.36 ms auto_select, noise 2.40 against 2.42, PowerSign 1.65
(one measurement, 2026-12-01, the update as this benchmark times it with jit_compile=False).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import app, flags

import nos_tf
from nos_tf import proxy
from nos_tf.benchmarks import interleaved_medians, optimizer_step, run_main
from nos_tf.rules import semantics

_STEPS = flags.DEFINE_integer(
    "steps", 10, "Timed updates per contender per round.", lower_bound=1)
_ROUNDS = flags.DEFINE_integer(
    "rounds", 3, "Interleaved rounds; the median is over all.", lower_bound=1)

POWERSIGN = nos_tf.PAPER_RULES["powersign"]
RANDOM_RULES = ("drop(g, 0.3)", "g + noise")


def rule_step(rule: str, variables, grads, algorithm: str):
    """One RuleOptimizer update of `variables` as a `tf.function`, traced now — with the
    optimizer's XLA update inside it — while `semantics.RANDOM_ALGORITHM` is `algorithm`:
    the algorithm is read at tracing, and later calls run this trace."""
    step = optimizer_step(nos_tf.RuleOptimizer(rule, learning_rate=1e-3), variables, grads)
    named, semantics.RANDOM_ALGORITHM = semantics.RANDOM_ALGORITHM, algorithm
    try:
        step.get_concrete_function()
    finally:
        semantics.RANDOM_ALGORITHM = named
    return step


def contenders() -> dict[str, object]:
    variables = proxy.build_child_network((28, 28, 1), 10).trainable_variables
    rng = np.random.default_rng(0)
    grads = [tf.constant(rng.normal(size=v.shape).astype("float32")) for v in variables]
    steps = {POWERSIGN: rule_step(POWERSIGN, variables, grads, semantics.RANDOM_ALGORITHM)}
    for rule in RANDOM_RULES:
        steps[rule] = rule_step(rule, variables, grads, semantics.RANDOM_ALGORITHM)
        steps[f"{rule}, auto_select"] = rule_step(rule, variables, grads, "auto_select")
    return steps


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    medians = interleaved_medians(contenders(), _STEPS.value, _ROUNDS.value)
    powersign = medians[POWERSIGN]
    print(f"One update of the proxy's child network; median of {_ROUNDS.value}×{_STEPS.value} "
          f"updates, interleaved. Draws by {semantics.RANDOM_ALGORITHM!r} unless marked.")
    print(f"{'rule':32s} {'ms':>8s} {'× PowerSign':>12s}")
    for name, median in medians.items():
        print(f"{name:32s} {median * 1e3:8.2f} {median / powersign:12.2f}")
    for rule in RANDOM_RULES:
        print(f"{rule}: auto_select takes {medians[f'{rule}, auto_select'] / medians[rule]:.1f}x "
              "as long as Philox named")


if __name__ == "__main__":
    run_main(main)
