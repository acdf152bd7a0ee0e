"""The text form of rules: `parse(text) -> Expr` and `format_expr(expr) -> text`.

Rules are written as Python expressions (the language: README.md's "The rule language",
and `python -m nos_tf.rules` prints its vocabulary), so Python's own parser (`ast`) reads
them: precedence, associativity and number syntax are exactly Python's, and its error
positions are reused. This module then checks the tree against the vocabulary tables and
turns it into `expr` nodes. The printer writes the fewest parentheses that parse back to
the same tree, so `parse(format_expr(e)) == e` for every tree the parser, the controller or
`simplify` makes (a hand-built `neg` of a number reads back as the negative number).
"""

from __future__ import annotations

import ast
import math
import re
import struct
import warnings

from nos_tf.rules import vocab
from nos_tf.rules.expr import BinOp, Call, Const, Expr, Operand

MAX_RULE_LENGTH = 2000
"""The longest rule text that is read, and the longest a rule read may print as. The printed
text (`str(rule)`) is what a saved RuleOptimizer stores and parses again when loaded, and
it spaces every operator (`g*m` prints as `g * m`): a terse text under the limit can print
at twice its length. Checked on the typed text alone, such a rule trained and saved, and
its model then failed to load."""
MAX_RULE_DEPTH = 64
"""Nesting deeper than this is refused as the rule is read: every later step (printing,
fingerprints, simplify, the optimizer's trace) recurses through the tree, and a text of
2,000 characters could nest 1,000 deep, past Python's recursion limit. A search's rules
are under 10 deep."""

# numpy.finfo(numpy.float32).tiny: below it, float32 numbers are subnormal.
_FLOAT32_SMALLEST_NORMAL = 1.1754943508222875e-38
_BINARY_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}

# Characters refused before Python reads the text, with why. Python would drop a comment
# silently (`g * m # v` read as `g * m`) and gives a null character no position.
_REFUSED_CHARACTERS = {
    "\n": "a rule is one line",
    "\r": "a rule is one line",
    "#": "'#' starts a comment, which a rule cannot have",
    "\0": "invalid non-printable character U+0000",
}

# How the echoed text shows characters that a terminal would not print one column wide:
# line breaks as one visible character each, the other control characters (a tab, which
# jumps to the next tab stop; a null, which prints nothing) as their Unicode pictures, so
# that the caret stays under its character.
_SHOWN_CHARACTERS = {code: chr(0x2400 + code) for code in range(32)}
_SHOWN_CHARACTERS.update({ord("\r"): "\u21b5", ord("\n"): "\u21b5", 0x7F: "\u2421"})
_ECHO_LENGTH = 60  # characters of the rule shown when no position is known


class RuleSyntaxError(ValueError):
    """A rule text that is not in the language. The message shows where, with a caret."""

    def __init__(self, message: str, text: str, offset: int | None = None):
        self.text = text
        self.offset = offset  # 0-based character position, when known
        self.reason = message
        if offset is not None:
            shown = text.translate(_SHOWN_CHARACTERS)
            message = f"{message} at position {offset}:\n  {shown}\n  {' ' * offset}^"
        elif len(text) > _ECHO_LENGTH:  # a rule too long to read is too long to echo
            message = f"{message} in rule {text[:_ECHO_LENGTH]!r}... ({len(text)} characters)"
        elif text.strip():  # "empty rule in rule ''" says nothing more
            message = f"{message} in rule {text!r}"
        super().__init__(message)

    def __reduce__(self):
        """Pickles by what `__init__` takes (its `args` hold only the message shown): a
        rule refused in a Ray worker or a process pool comes back as this error."""
        return type(self), (self.reason, self.text, self.offset)


def vocabulary_hint() -> str:
    operands = ", ".join(vocab.OPERANDS)
    functions = ", ".join(name for name in vocab.UNARIES if name != "neg")
    return f"operands are {operands}; functions are {functions}"


def parse(text: str) -> Expr:
    """Reads a rule text into an expression tree; raises RuleSyntaxError."""
    if not isinstance(text, str):
        raise TypeError(f"A rule must be given as text, got {type(text).__name__}.")
    if not text.strip():
        raise RuleSyntaxError("empty rule", text)
    if len(text) > MAX_RULE_LENGTH:
        raise RuleSyntaxError(f"rule longer than {MAX_RULE_LENGTH} characters", text)
    refused = next((i for i, character in enumerate(text) if character in _REFUSED_CHARACTERS),
                   None)
    if refused is not None:
        raise RuleSyntaxError(_REFUSED_CHARACTERS[text[refused]], text, refused)
    try:
        with warnings.catch_warnings():  # "1if g": a SyntaxWarning on stderr, then refused.
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        if error.offset == 0:
            # Python reports a text that stops mid-expression ("g * sign(m) *") at
            # offset 0: the place to show is the end.
            raise RuleSyntaxError("unexpected end of rule", text, len(text.rstrip())) from None
        offset = None if error.offset is None else error.offset - 1
        leading = len(text) - len(text.lstrip())
        offset = None if offset is None else min(offset + leading, len(text))
        raise RuleSyntaxError(error.msg, text, offset) from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise RuleSyntaxError(f"cannot read rule ({error})", text) from None
    try:
        expr = _Converter(text).convert(tree.body)
    except RecursionError:
        raise RuleSyntaxError("rule nested too deeply", text) from None
    printed = len(format_expr(expr))
    if printed > MAX_RULE_LENGTH:
        raise RuleSyntaxError(
            f"rule longer than {MAX_RULE_LENGTH} characters when printed ({printed}, operators "
            "spaced: the text that a saved optimizer stores and reads back)", text)
    return expr


class _Converter:
    """Turns Python's AST into rule nodes, rejecting everything outside the language."""

    def __init__(self, text: str):
        self.text = text
        self.leading = len(text) - len(text.lstrip())
        self.source = text.strip().encode("utf-8")  # what ast read; its offsets are bytes

    def position(self, byte_offset: int) -> int:
        """The character position in the rule of an ast offset: ast counts UTF-8 bytes of
        the stripped text ("ｇ" is one character, 3 bytes)."""
        return len(self.source[:byte_offset].decode("utf-8", errors="ignore")) + self.leading

    def error(self, message: str, node: ast.AST) -> RuleSyntaxError:
        offset = getattr(node, "col_offset", None)
        if offset is not None:
            offset = self.position(offset)
        return RuleSyntaxError(message, self.text, offset)

    def foreign_operator(self, node: ast.BinOp | ast.UnaryOp | ast.Compare | ast.BoolOp
                         ) -> RuleSyntaxError:
        """Names an operator that Python has and the language has not (`//`, `%`, `<`, `and`,
        `~`, `not in`, ...) and points at it. ast gives no position of its own to an
        operator: it is the text between the operands, less spaces and parentheses."""
        if isinstance(node, ast.UnaryOp):
            start, end = node.col_offset, node.operand.col_offset
        else:
            first, second = (
                node.values[:2] if isinstance(node, ast.BoolOp)
                else (node.left, node.comparators[0]) if isinstance(node, ast.Compare)
                else (node.left, node.right))
            start, end = first.end_col_offset, second.col_offset
        between = self.source[start:end]
        padding = b" \t\f()"
        offset = start + len(between) - len(between.lstrip(padding))
        symbol = between.strip(padding).decode("utf-8")
        operators = " ".join(vocab.BINARIES)
        return RuleSyntaxError(
            f"'{symbol}' is not an operator of the rule language (it has {operators} and unary -)",
            self.text, self.position(offset))

    def convert(self, node: ast.AST, depth: int = 1) -> Expr:
        if depth > MAX_RULE_DEPTH:
            raise self.error(f"rule nested more than {MAX_RULE_DEPTH} levels deep", node)
        if isinstance(node, ast.Constant):
            return Const(self.number(node))
        if isinstance(node, ast.Name):
            if node.id not in vocab.OPERANDS:
                hint = (
                    f"'{node.id}' is a function: call it as {node.id}(x)"
                    if node.id in vocab.UNARIES
                    else vocabulary_hint()
                )
                raise self.error(f"unknown name '{node.id}' ({hint})", node)
            return Operand(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.convert(node.operand, depth + 1)
            if isinstance(node.op, ast.UAdd):
                return operand
            if isinstance(operand, Const):
                return Const(-operand.value)
            return Call("neg", operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPERATORS:
            return BinOp(_BINARY_OPERATORS[type(node.op)], self.convert(node.left, depth + 1),
                         self.convert(node.right, depth + 1))
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp)):
            raise self.foreign_operator(node)
        raise self.error(f"unsupported syntax ({type(node).__name__})", node)

    def number(self, node: ast.Constant) -> float:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(f"expected a number or operand, got {value!r}", node)
        try:
            value = float(value)
            # Rules compute in float32 (half-precision variables too): a number that
            # float32 cannot hold would turn into inf or 0 only in the optimizer.
            single = struct.unpack("f", struct.pack("f", value))[0]
        except OverflowError:
            single = math.inf
        if not math.isfinite(single):
            raise self.error("number out of range (float32, in which rules compute, holds "
                             "up to 3.4e38)", node)
        # Python reads 1e-400 as 0.0 itself; TensorFlow's CPU kernels, eager and XLA,
        # flush float32's subnormals (below 1.2e-38) to 0 as they compute.
        if (0.0 < abs(single) < _FLOAT32_SMALLEST_NORMAL
                or single == 0.0 and self._nonzero_literal(node)):
            raise self.error("number rounds to 0 in float32, in which rules compute "
                             "(TensorFlow takes numbers below 1.2e-38 as 0)", node)
        return value

    def _nonzero_literal(self, node: ast.Constant) -> bool:
        """Whether the number as written has a nonzero digit before its exponent."""
        literal = self.source[node.col_offset:node.end_col_offset].decode("utf-8")
        return any(digit in "123456789" for digit in re.split("[eE]", literal)[0])

    def call(self, node: ast.Call, depth: int) -> Expr:
        if not isinstance(node.func, ast.Name):
            raise self.error("only the language's functions can be called", node)
        name = node.func.id
        spec = vocab.UNARIES.get(name)
        if spec is None or name == "neg":
            raise self.error(f"unknown function '{name}' ({vocabulary_hint()})", node.func)
        if node.keywords:
            raise self.error(f"{name}() takes no keyword arguments", node.keywords[0])
        expected = 2 if spec.param else 1
        if len(node.args) != expected:
            usage = f"{name}(x, {spec.param})" if spec.param else f"{name}(x)"
            raise self.error(f"{name}() takes {expected} argument(s): {usage}", node)
        arg = self.convert(node.args[0], depth + 1)
        if not spec.param:
            return Call(name, arg)
        param = self.convert(node.args[1], depth + 1)
        if not isinstance(param, Const):
            raise self.error(f"the {spec.param} of {name}() must be a number", node.args[1])
        if name == "drop" and not 0.0 <= param.value < 1.0:
            raise self.error("drop probability must be in [0, 1)", node.args[1])
        if name == "clip" and param.value < 0.0:
            raise self.error("clip bound must be non-negative", node.args[1])
        return Call(name, arg, param.value)


def format_number(value: float) -> str:
    """The shortest text that reads back as exactly this float (2, 0.3, 1e-4), except that
    a whole number below 1e16 is written out (100000, not 1e5), as rules have printed it."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    # The fewest mantissa digits that read back exactly, written as <mantissa>e<exponent>.
    for digits in range(17):
        mantissa, exponent = f"{value:.{digits}e}".split("e")
        if float(f"{mantissa}e{exponent}") == value:
            break
    scientific = f"{mantissa}e{int(exponent)}"
    return min((repr(value), scientific), key=len)


def _precedence(expr: Expr) -> int:
    if isinstance(expr, BinOp):
        return vocab.BINARIES[expr.op].precedence
    if isinstance(expr, Call) and expr.name == "neg":
        return vocab.NEGATION_PRECEDENCE
    if isinstance(expr, Const) and (expr.value < 0 or math.copysign(1.0, expr.value) < 0):
        return vocab.NEGATION_PRECEDENCE
    return vocab.ATOM_PRECEDENCE


def _wrap(expr: Expr, needs_parentheses: bool) -> str:
    text = format_expr(expr)
    return f"({text})" if needs_parentheses else text


def format_expr(expr: Expr) -> str:
    """Canonical text: Python syntax with only the parentheses that precedence requires."""
    if isinstance(expr, Const):
        return format_number(expr.value)
    if isinstance(expr, Operand):
        return expr.name
    if isinstance(expr, Call):
        if expr.name == "neg":
            # The operand of unary minus is a factor: a power or another negation.
            return "-" + _wrap(expr.arg, _precedence(expr.arg) < vocab.NEGATION_PRECEDENCE)
        if expr.param is None:
            return f"{expr.name}({format_expr(expr.arg)})"
        return f"{expr.name}({format_expr(expr.arg)}, {format_number(expr.param)})"
    spec = vocab.BINARIES[expr.op]
    left, right = _precedence(expr.left), _precedence(expr.right)
    if spec.right_associative:
        # x ** y: the base is a primary; the exponent is a factor (may be negated).
        left_text = _wrap(expr.left, left <= spec.precedence)
        right_text = _wrap(expr.right, right < vocab.NEGATION_PRECEDENCE)
    else:
        left_text = _wrap(expr.left, left < spec.precedence)
        right_text = _wrap(expr.right, right <= spec.precedence)
    return f"{left_text} {expr.op} {right_text}"
