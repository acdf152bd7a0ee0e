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
    """A number: `2`, `0.3`, `1e-4`."""

    value: float


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
