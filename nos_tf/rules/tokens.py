"""The controller's encoding of rules: K units of 5 tokens each (Bello et al., section 3.1).

Unit k computes `b(u1(op1), u2(op2))`. Each of its five positions — op1, op2, u1, u2, b —
chooses from its own menu, built from the vocabulary tables: operands (the paper's menu:
g, g², g³, m, v, y, sign(g), sign(m), 1, 2, the noises, 10⁻⁴w … 10⁻¹w, adam, rmsprop, the
decays) plus the outputs of earlier units; unary functions (identity, −x, eˣ, log|x|, √|x|,
clip and drop at the paper's settings, sign); binary functions (+, −, ·, /, ^, keep-left).
The last unit is the update; units it does not reach are dead code and vanish on decoding.
"""

from __future__ import annotations

import functools
import operator
from typing import Sequence

import numpy as np

from nos_tf.rules import syntax, vocab
from nos_tf.rules.expr import BinOp, Call, Const, Expr
from nos_tf.rules.rule import Rule

POSITION_KINDS = ("operand", "operand", "unary", "unary", "binary")
MAX_UNITS = 5
"""The most units a rule of tokens has. A unit may read the one before it on both sides,
so the printed rule can double in length with each unit: the longest prints 1,124
characters at 5 units and 2,276 at 6, past the `syntax.MAX_RULE_LENGTH` a rule is read
back in, so that a RuleOptimizer saved with it would not load. PowerSign,
`g * exp(sign(g) * sign(m))`, takes 2; AddSign as the paper writes it,
`(1 + sign(g) * sign(m)) * g`, takes 3 (a constant plus a product, times g), as do the sign
decays' variants, but 2 hold `g + sqrt(g2) * sign(m)`, the same numbers (g + |g|·sign(m))
wherever g² does not underflow (|g| above ~1e-19 in float32)."""
KEEP_LEFT = "x"  # the binary menu's "keep the left argument" entry
IDENTITY = "x"  # the unary menu's identity entry


@functools.cache
def operand_menu() -> tuple[tuple[str, Expr], ...]:
    """(text, expression) of each operand choice, from the vocabulary table."""
    texts = [form for spec in vocab.OPERANDS.values() for form in spec.forms]
    texts += [syntax.format_number(value) for value in vocab.CONSTANT_OPERANDS]
    return tuple((text, syntax.parse(text)) for text in texts)


@functools.cache
def unary_menu() -> tuple[tuple[str, str | None, float | None], ...]:
    """(text, function name, parameter) of each unary choice; the identity has name None."""
    menu = [(IDENTITY, None, None)]
    for spec in vocab.UNARIES.values():
        if spec.name == "neg":
            menu.append(("-x", "neg", None))
        elif spec.param:
            menu += [
                (f"{spec.name}(x, {syntax.format_number(c)})", spec.name, c) for c in spec.choices
            ]
        else:
            menu.append((f"{spec.name}(x)", spec.name, None))
    return tuple(menu)


@functools.cache
def binary_menu() -> tuple[tuple[str, str | None], ...]:
    """(text, symbol) of each binary choice; keep-left has symbol None."""
    return tuple((f"x {symbol} y", symbol) for symbol in vocab.BINARIES) + ((KEEP_LEFT, None),)


class TokenSpace:
    """Token sequences of `num_units` units ↔ rules.

    Attributes:
      num_units: K.
      sizes: vocabulary size at each of the 5·K positions (op1, op2, u1, u2, b per unit);
        operand positions have room for references to the K − 1 earlier units.
      position_kinds: "operand" | "unary" | "binary" per position.
    """

    def __init__(self, num_units: int = 1):
        if not 1 <= num_units <= MAX_UNITS:
            raise ValueError(f"num_units must be 1 to {MAX_UNITS}, got {num_units}")
        self.num_units = num_units
        self._operands = operand_menu()
        self._unaries = unary_menu()
        self._binaries = binary_menu()
        menu_sizes = {
            "operand": len(self._operands) + num_units - 1,
            "unary": len(self._unaries),
            "binary": len(self._binaries),
        }
        self.position_kinds = list(POSITION_KINDS) * num_units
        self.sizes = [menu_sizes[kind] for kind in self.position_kinds]

    def __len__(self) -> int:
        return len(self.sizes)

    def __repr__(self) -> str:
        return f"TokenSpace(num_units={self.num_units})"

    def mask(self, position: int) -> np.ndarray:
        """Valid choices at `position`: operands may reference only earlier units."""
        valid = np.ones(self.sizes[position], dtype=bool)
        if self.position_kinds[position] == "operand":
            unit = position // len(POSITION_KINDS)
            valid[len(self._operands) + unit :] = False
        return valid

    def token_names(self, position: int) -> list[str]:
        kind = self.position_kinds[position]
        if kind == "operand":
            refs = [f"unit{k}" for k in range(self.num_units - 1)]
            return [text for text, _ in self._operands] + refs
        menu = self._unaries if kind == "unary" else self._binaries
        return [entry[0] for entry in menu]

    def _check(self, tokens: Sequence[int]) -> list[int]:
        try:  # int() would take token 4.99 for 4.
            tokens = [operator.index(t) for t in tokens]
        except TypeError:
            raise ValueError(f"tokens must be integers, got {list(tokens)}") from None
        if len(tokens) != len(self.sizes):
            raise ValueError(f"expected {len(self.sizes)} tokens, got {len(tokens)}")
        for position, token in enumerate(tokens):
            if not (0 <= token < self.sizes[position] and self.mask(position)[token]):
                raise ValueError(f"token {token} is not valid at position {position}")
        return tokens

    def decode(self, tokens: Sequence[int]) -> Rule:
        tokens = self._check(tokens)
        units: list[Expr] = []
        for k in range(self.num_units):
            op1, op2, u1, u2, b = tokens[5 * k : 5 * k + 5]
            left = self._apply_unary(u1, self._operand(op1, units))
            symbol = self._binaries[b][1]
            if symbol is None:
                units.append(left)
            else:
                right = self._apply_unary(u2, self._operand(op2, units))
                units.append(BinOp(symbol, left, right))
        return Rule(units[-1])

    def _operand(self, token: int, units: list[Expr]) -> Expr:
        if token < len(self._operands):
            return self._operands[token][1]
        return units[token - len(self._operands)]

    def _apply_unary(self, token: int, x: Expr) -> Expr:
        _, name, param = self._unaries[token]
        if name is None:
            return x
        if name == "neg" and isinstance(x, Const):
            return Const(-x.value)  # the parser's form of a negative number
        return Call(name, x, param)

    def encode(self, rule: Rule) -> list[int]:
        """Tokens that decode to `rule`. Raises ValueError when the rule is not expressible
        in this space (a number outside the menu, too many units, ...)."""
        return _Encoder(self).encode(rule)


class _Encoder:
    """Splits an expression into units, innermost first, then pads with dead units."""

    def __init__(self, space: TokenSpace):
        self.space = space
        self.operand_tokens = {expr: i for i, (_, expr) in enumerate(space._operands)}
        self.unary_tokens = {(name, param): i for i, (_, name, param) in enumerate(space._unaries)}
        self.binary_tokens = {symbol: i for i, (_, symbol) in enumerate(space._binaries)}
        self.units: list[list[int]] = []  # tokens, with unit references as ("ref", k)
        # A sub-expression that occurs twice is computed by one unit, read twice: the
        # decoder's `(g + m) * (g + m)` of 2 units (unit0 read on both sides) took 3.
        self.unit_of: dict[Expr, int] = {}

    def encode(self, rule: Rule) -> list[int]:
        self.unit(rule.expr)
        padding = self.space.num_units - len(self.units)
        if padding < 0:
            raise ValueError(
                f"rule {rule} needs {len(self.units)} units; the space has {self.space.num_units}"
            )
        n_operands = len(self.space._operands)
        dead_unit = [0, 0, 0, 0, self.binary_tokens[None]]  # g, unused
        tokens = dead_unit * padding
        for unit in self.units:
            for token in unit:
                if isinstance(token, tuple):  # reference to unit k, shifted by the padding
                    token = n_operands + padding + token[1]
                tokens.append(token)
        return tokens

    def split_unary(self, expr: Expr) -> tuple[int, Expr]:
        if expr in self.operand_tokens:
            return self.unary_tokens[(None, None)], expr
        if isinstance(expr, Call) and (expr.name, expr.param) in self.unary_tokens:
            return self.unary_tokens[(expr.name, expr.param)], expr.arg
        if isinstance(expr, Const) and expr.value < 0 and Const(-expr.value) in self.operand_tokens:
            return self.unary_tokens[("neg", None)], Const(-expr.value)
        return self.unary_tokens[(None, None)], expr

    def operand(self, expr: Expr):
        if expr in self.operand_tokens:
            return self.operand_tokens[expr]
        return ("ref", self.unit(expr))

    def unit(self, expr: Expr) -> int:
        """Appends the units computing `expr` (its sub-units first), unless one already
        does; returns its index."""
        if expr in self.unit_of:
            return self.unit_of[expr]
        # A menu operand may be a product (`1e-1 * w`): one operand, not a binary unit of
        # two, whose number `1e-1` is not in the menu.
        if isinstance(expr, BinOp) and expr not in self.operand_tokens:
            u1, left = self.split_unary(expr.left)
            u2, right = self.split_unary(expr.right)
            tokens = [self.operand(left), self.operand(right), u1, u2, self.binary_tokens[expr.op]]
        else:
            u1, arg = self.split_unary(expr)
            if arg is expr and expr not in self.operand_tokens:
                raise ValueError(
                    f"'{syntax.format_expr(expr)}' is not in the controller's operand menu"
                )
            tokens = [self.operand(arg), 0, u1, 0, self.binary_tokens[None]]
        self.units.append(tokens)
        self.unit_of[expr] = len(self.units) - 1
        return self.unit_of[expr]
