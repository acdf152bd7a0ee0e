"""The rule language: vocabulary, text form, controller tokens, semantics and screens.

    rule = nos_tf.rules.parse("g * exp(sign(g) * sign(m))")
    str(rule), rule.fingerprint(), nos_tf.rules.screen(rule), nos_tf.rules.simplify(rule)
    space = nos_tf.rules.TokenSpace(num_units=2); space.decode(tokens)

The language itself is described in README.md's "The rule language";
`python -m nos_tf.rules` prints its vocabulary (operands, functions, operators).

This package knows nothing of Keras models or of the search; `nos_tf.RuleOptimizer`
turns a Rule into a Keras optimizer.
"""

from nos_tf.rules import vocab
from nos_tf.rules.rule import Rule, as_rule, parse
from nos_tf.rules.semantics import MIN_DESCENT_COSINE
from nos_tf.rules.simplify import simplify
from nos_tf.rules.syntax import RuleSyntaxError
from nos_tf.rules.tokens import MAX_UNITS, TokenSpace


def screen(rule: Rule | str, min_cosine: float = MIN_DESCENT_COSINE) -> str | None:
    """Why `rule` is not worth training (fails to build, constant, not a descent
    direction, NaN on probes), or None when it passes. Takes milliseconds, a few hundred
    for a rule with random operands (averaged over draws)."""
    from nos_tf.rules.semantics import screen_expr

    try:
        rule = as_rule(rule)
    except RuleSyntaxError as error:
        return f"fails to build: {error.reason}"
    return screen_expr(rule.expr, min_cosine)


__all__ = [
    "MAX_UNITS", "Rule", "RuleSyntaxError", "TokenSpace", "as_rule", "parse", "screen",
    "simplify", "vocab",
]
