"""Simplification of found rules before they are shown to a person.

Controller output is full of identities (`m * 1`, `x ** 1`, `--x`) and constant
sub-expressions (`exp(1) + 2`). `simplify` rewrites bottom-up with a few algebraic rules
and folds constant sub-trees to numbers. It keeps behaviour: if the simplified rule's
fingerprint differs from the original's (it should not), the original is returned.
"""

from __future__ import annotations

import math

import numpy as np

from nos_tf.rules import semantics, syntax
from nos_tf.rules.expr import BinOp, Call, Const, Expr, Operand, walk
from nos_tf.rules.rule import Rule, as_rule

def _is(expr: Expr, value: float) -> bool:
    return isinstance(expr, Const) and expr.value == value


def _is_constant(expr: Expr) -> bool:
    """No operand below: the sub-tree is a number (drop is random, so never constant)."""
    return not any(
        isinstance(node, Operand) or (isinstance(node, Call) and node.name == "drop")
        for node in walk(expr)
    )


def _fold(expr: Expr) -> Expr:
    """A constant sub-tree evaluated to a number, if finite (in float64, so exp(1) shows
    as 2.718281828459045, not float32's 2.7182817459106445)."""
    inputs = semantics.Inputs(g=np.zeros((), np.float64), w=None, moments={}, t=0.0)
    value = float(np.asarray(semantics.direction(expr, inputs)))
    return Const(value) if math.isfinite(value) else expr


def _rewrite(expr: Expr) -> Expr:
    """One bottom-up pass of identity removal and constant folding."""
    if isinstance(expr, Call):
        arg = _rewrite(expr.arg)
        expr = Call(expr.name, arg, expr.param)
        if expr.name == "neg" and isinstance(arg, Call) and arg.name == "neg":
            return arg.arg
        if expr.name == "sign" and isinstance(arg, Call) and arg.name == "sign":
            return arg
        if expr.name == "drop" and expr.param == 0.0:
            return arg
    elif isinstance(expr, BinOp):
        left, right = _rewrite(expr.left), _rewrite(expr.right)
        op = expr.op
        if op == "*" and _is(right, 1.0) or op in ("/", "**") and _is(right, 1.0):
            return left
        if op == "*" and _is(left, 1.0):
            return right
        if op in ("+", "-") and _is(right, 0.0):
            return left
        if op == "+" and _is(left, 0.0):
            return right
        if op == "-" and _is(left, 0.0):
            return _rewrite(Call("neg", right))
        if op == "*" and (_is(left, 0.0) or _is(right, 0.0)):
            other = right if _is(left, 0.0) else left
            if _always_finite(other):
                return Const(0.0)
        expr = BinOp(op, left, right)
    if not isinstance(expr, Const) and _is_constant(expr):
        return _fold(expr)
    return expr


_DECAYS = ("ld", "cd", "rd")  # in [0, 1]


def _bounded(expr: Expr) -> bool:
    """Whether the value stays within a fixed bound whatever the (finite) inputs."""
    if isinstance(expr, Const):
        return True
    if isinstance(expr, Operand):
        return expr.name in _DECAYS
    if isinstance(expr, Call):
        return expr.name in ("sign", "clip") or (
            expr.name in ("neg", "drop") and _bounded(expr.arg))
    return expr.op in ("+", "-", "*") and _bounded(expr.left) and _bounded(expr.right)


def _always_finite(expr: Expr) -> bool:
    """Whether finite inputs always give a finite value (then 0 · expr is 0).

    Operands count as finite; exp, log, division and powers do not, nor a product of two
    unbounded factors, which overflows (`g3 * g3` at |g| = 1e7 in float32).
    """
    if isinstance(expr, (Const, Operand)):
        return True
    if isinstance(expr, Call):
        return expr.name not in ("exp", "log") and _always_finite(expr.arg)
    if expr.op in ("/", "**"):
        return False
    if not (_always_finite(expr.left) and _always_finite(expr.right)):
        return False
    return expr.op != "*" or _bounded(expr.left) or _bounded(expr.right)


def simplify(rule: Rule | str) -> Rule:
    """The same rule (a Rule or its text) with identities and dead parts removed and
    constants folded.

    The result has the same fingerprint; where the rewrite would change behaviour (it
    should not), the rule comes back unchanged. So it does where the parser, and so a
    saved optimizer, would not read the tidied text back: longer than a rule may be
    (`syntax.MAX_RULE_LENGTH`: folded, `1 / 3` is `0.3333333322222222`), or a folded
    number float32 cannot hold (`exp(100)`, 2.7e43, where the rule computes inf).
    """
    rule = as_rule(rule)
    expr = rule.expr
    for _ in range(8):  # until nothing changes; a rewrite can enable another
        rewritten = _rewrite(expr)
        if rewritten == expr:
            break
        expr = rewritten
    simplified = Rule(expr)
    if simplified == rule or simplified.fingerprint() != rule.fingerprint():
        return rule
    try:
        syntax.parse(str(simplified))
    except syntax.RuleSyntaxError:
        return rule
    return simplified
