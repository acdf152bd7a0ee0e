"""The expression tree of an update rule.

Four immutable node types are enough for the whole language: numbers, operands (named
inputs such as the gradient `g`), unary function calls and binary operators. The nodes
compare and hash structurally, so two rules are equal exactly when their trees are; the
behavioural equality that the search needs is `Rule.fingerprint()` (see semantics.py).
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Union


@dataclasses.dataclass(frozen=True)
class Const:
    """A number: `2`, `0.3`, `1e-4`.

    Never -0.0, which would print as `0` (Python's `-0` is the integer 0) and yet compute
    otherwise (`0 ** -1` is inf, `(-0.0) ** -1` -inf): a negated or folded zero is 0.
    """

    value: float

    def __post_init__(self):
        if self.value == 0:
            object.__setattr__(self, "value", 0.0)


@dataclasses.dataclass(frozen=True)
class Operand:
    """A named input of the rule, one of `vocab.OPERANDS` (`g`, `m`, `adam`, ...)."""

    name: str


@dataclasses.dataclass(frozen=True)
class Call:
    """A unary function of `vocab.UNARIES`; `param` is its numeric argument (clip, drop)."""

    name: str
    arg: "Expr"
    param: float | None = None


@dataclasses.dataclass(frozen=True)
class BinOp:
    """A binary operator of `vocab.BINARIES`, keyed by its symbol (`+`, `-`, `*`, `/`, `**`)."""

    op: str
    left: "Expr"
    right: "Expr"


Expr = Union[Const, Operand, Call, BinOp]


def children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, Call):
        return (expr.arg,)
    if isinstance(expr, BinOp):
        return (expr.left, expr.right)
    return ()


def walk(expr: Expr) -> Iterator[Expr]:
    """All nodes of the tree, parents before children, left before right."""
    yield expr
    for child in children(expr):
        yield from walk(child)


def size(expr: Expr) -> int:
    return sum(1 for _ in walk(expr))


def in_canonical_order(expr: Expr) -> Expr:
    """The same arithmetic with every chain of sums and of products in one fixed order.

    `(a + b) + c`, `a + (b + c)` and `(c - (-a)) + b` differ only in the order in which
    floating-point rounding happens, so their numbers differ in the last bits; the
    fingerprint hashes rounded numbers, and a last bit on a rounding boundary split about
    half of such triples. Evaluated in this order they compute bit for bit the same.
    Chains of `+` and `-` become one sum of signed terms (x − t is exactly x + (−t) in
    floating point), chains of `*` one product; terms are sorted by their own canonical
    form and summed or multiplied left to right. Negations come out of products as they
    come out of sums (−a · b is exactly −(a · b)): the factors are sorted without their
    signs and the product is negated once when an odd number of them were, so that
    `-(a * b) * c` and `a * -(b * c)` multiply in the same order (a negation stopped the
    chain, and they differed in the fingerprint). A quotient in a product is one too:
    x / y is x / (y + 1e-8), so `(a / b) * c` and `(a * c) / b` are one number computed
    in two orders; the product's factors are multiplied first, then divided by each
    divisor, divisors sorted too (`g / v * m`, `g * (m / v)` and `m / v * g` differed in
    the fingerprint). A divisor stays whole: `a / (b * c)` is not `a / b / c` (1e-8 is
    added once, not twice), and a negation in it stays there (a / −b is not −(a / b)).
    `**` is not associative: it stays as it is.
    """
    if is_quotient(expr):
        factors, divisors, negations = unsigned_quotient(expr)
        return quotient(sorted((in_canonical_order(factor) for factor in factors), key=repr),
                        sorted((in_canonical_order(divisor) for divisor in divisors), key=repr),
                        negations)
    if isinstance(expr, Call):
        return Call(expr.name, in_canonical_order(expr.arg), expr.param)
    if not isinstance(expr, BinOp):
        return expr
    if expr.op in ("+", "-"):
        terms = []
        for term, negated in _signed_terms(expr):
            term = in_canonical_order(term)
            if _is_negation(term):  # a product with an odd number of negated factors
                term, negated = term.arg, not negated
            terms.append((term, negated))
        terms.sort(key=lambda term: (repr(term[0]), term[1]))
        # Start from the first added term, so that no negation is needed in front.
        first = next((i for i, (_, negated) in enumerate(terms) if not negated), 0)
        head, negated = terms.pop(first)
        total = Call("neg", head) if negated else head
        for term, negated in terms:
            total = BinOp("-" if negated else "+", total, term)
        return total
    return BinOp(expr.op, in_canonical_order(expr.left), in_canonical_order(expr.right))


def _is_negation(expr: Expr) -> bool:
    return isinstance(expr, Call) and expr.name == "neg"


def is_quotient(expr: Expr) -> bool:
    """Whether `expr` is a chain of `*`, `/` and negations (`unsigned_quotient`'s)."""
    return _is_negation(expr) or isinstance(expr, BinOp) and expr.op in ("*", "/")


def quotient(factors: list[Expr], divisors: list[Expr], negations: int) -> Expr:
    """The chain `unsigned_quotient` takes apart, put together in the order given: the
    factors multiplied left to right, then divided by each divisor, negated once if
    `negations` is odd."""
    product = factors[0]
    for factor in factors[1:]:
        product = BinOp("*", product, factor)
    for divisor in divisors:
        product = BinOp("/", product, divisor)
    return Call("neg", product) if negations % 2 else product


def unsigned_quotient(expr: Expr) -> tuple[list[Expr], list[Expr], int]:
    """The factors and divisors of a chain of `*`, `/` and negations, and how many
    negations stand among its factors: `-a * (b / c) * -d` → [a, b, d], [c], 2. A lone
    negation `-x` is the chain [x], [], 1."""
    if _is_negation(expr):
        factors, divisors, negations = unsigned_quotient(expr.arg)
        return factors, divisors, negations + 1
    if isinstance(expr, BinOp) and expr.op == "*":
        left = unsigned_quotient(expr.left)
        right = unsigned_quotient(expr.right)
        return left[0] + right[0], left[1] + right[1], left[2] + right[2]
    if isinstance(expr, BinOp) and expr.op == "/":
        factors, divisors, negations = unsigned_quotient(expr.left)
        return factors, divisors + [expr.right], negations
    return [expr], [], 0


def _signed_terms(expr: Expr, negated: bool = False) -> Iterator[tuple[Expr, bool]]:
    """The terms of a chain of `+`, `-` and negations with whether each is subtracted."""
    if isinstance(expr, BinOp) and expr.op in ("+", "-"):
        yield from _signed_terms(expr.left, negated)
        yield from _signed_terms(expr.right, negated != (expr.op == "-"))
    elif _is_negation(expr):
        yield from _signed_terms(expr.arg, not negated)
    else:
        yield expr, negated
