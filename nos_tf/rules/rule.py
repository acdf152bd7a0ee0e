"""`Rule`: an update rule as a value — printable, comparable, hashable, fingerprintable."""

from __future__ import annotations

import dataclasses
import functools

from nos_tf.rules import semantics, syntax, vocab
from nos_tf.rules.expr import BinOp, Expr, Operand, walk


def operand_names(expr: Expr) -> frozenset[str]:
    return frozenset(node.name for node in walk(expr) if isinstance(node, Operand))


@dataclasses.dataclass(frozen=True)
class Rule:
    """An update rule: the optimizer steps `w ← w − lr · rule(g, m, v, ...)`.

    Two rules are `==` when their expression trees are equal (what `str` prints is then
    the same); `fingerprint()` is the behavioural equality the search deduplicates on.
    """

    expr: Expr

    def __str__(self) -> str:
        return syntax.format_expr(self.expr)

    def __repr__(self) -> str:
        return f"Rule({str(self)!r})"

    @functools.cached_property
    def operands(self) -> frozenset[str]:
        """Names of the operands the rule reads."""
        return operand_names(self.expr)

    @property
    def moments(self) -> tuple[str, ...]:
        """The running averages an optimizer must keep for this rule (subset of m, v, y)."""
        return vocab.moments_of(self.operands)

    @property
    def needs_decay_steps(self) -> bool:
        return any(vocab.OPERANDS[name].needs_decay_steps for name in self.operands)

    @functools.cached_property
    def divides(self) -> bool:
        """Whether the rule has a `/` (whose δ an optimizer keeps in a variable)."""
        return any(isinstance(node, BinOp) and node.op == "/" for node in walk(self.expr))

    def fingerprint(self) -> str:
        """Behavioural hash (see `semantics.fingerprint_of`); cached per rule."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            cached = semantics.fingerprint_of(self.expr)
            object.__setattr__(self, "_fingerprint", cached)
        return cached


def parse(text: str) -> Rule:
    """Reads a rule from its text form, e.g. `g * exp(sign(g) * sign(m))` (README.md, "The
    rule language"; `python -m nos_tf.rules` prints the vocabulary).

    Raises:
      RuleSyntaxError: a ValueError that shows the position of the problem and, for an
        unknown name, the vocabulary.
    """
    return Rule(syntax.parse(text))


def as_rule(rule: Rule | str) -> Rule:
    """Accepts a Rule or its text."""
    if isinstance(rule, Rule):
        return rule
    return parse(rule)
