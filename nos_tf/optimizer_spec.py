"""Optimizers by name or by rule: what a user types to pick one, and the optimizer it builds.

`OptimizerSpec.parse("adam")` is Keras's Adam, `"momentum"` Keras's SGD with momentum 0.9,
`"powersign-ld"` nos_tf's PowerSign with a linear sign decay, and any other text a rule of
the language (`"drop(g, 0.3) * exp(sign(g) * sign(m))"`). `nos_tf.transfer` compares the
optimizers of its --optimizers list so, and `nos_tf.evaluate --baselines` scores the
paper's classics (sgd, momentum, adam, rmsprop) with the same Keras optimizers.
"""

from __future__ import annotations

import dataclasses
import re

from absl import flags

_SIGN_DECAY_SUFFIXES = {"ld": "linear", "cd": "cosine", "rd": "restart"}
_NAMED_LABELS = {
    "sgd": "SGD", "momentum": "Momentum", "adam": "Adam", "rmsprop": "RMSProp",
    "powersign": "PowerSign", "addsign": "AddSign",
}
_SIGN_OPTIMIZERS = ("powersign", "addsign")  # the named optimizers that take a sign decay
# A name with an optional decay suffix; a suffix on another name is refused in `parse`.
_NAMED_PATTERN = re.compile(
    rf"^({'|'.join(_NAMED_LABELS)})(?:-({'|'.join(_SIGN_DECAY_SUFFIXES)}))?$")
# An identifier, maybe with a suffix: what a user means as an optimizer's name.
_NAME_LIKE = re.compile(r"^([A-Za-z_]\w*)(?:-(\w+))?$")
_SUFFIXES_TEXT = ", ".join(f"-{suffix}" for suffix in _SIGN_DECAY_SUFFIXES)
_MOMENTUM = 0.9


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer, by name or as a rule of the language (an entry of --optimizers).

    Names: sgd, momentum (SGD with momentum 0.9), adam, rmsprop (Keras's), powersign and
    addsign (nos_tf's), optionally with a sign decay: powersign-ld, addsign-cd, ...-rd.
    Anything else is read as rule text, e.g. `drop(g, 0.3) * exp(sign(g) * sign(m))`.
    """

    text: str
    label: str  # The table's name: "Adam", "PowerSign-ld", or the rule's canonical text.
    name: str | None = None  # A key of _NAMED_LABELS; None for a rule text.
    sign_decay: str | None = None  # PowerSign's and AddSign's: "linear", "cosine", ...

    @classmethod
    def parse(cls, text: str) -> "OptimizerSpec":
        """Raises ValueError for text that is neither: nos_tf.RuleSyntaxError for a rule,
        or, for a lone name such as `adagrad` or `powersign-xd` (a misspelt or unsupported
        optimizer more likely than an attempt at a rule), one that lists the names."""
        import nos_tf  # pylint: disable=import-outside-toplevel
        from nos_tf.rules import vocab  # pylint: disable=import-outside-toplevel

        text = text.strip()
        match = _NAMED_PATTERN.match(text.lower())
        if match and match[2] and match[1] not in _SIGN_OPTIMIZERS:
            # Read as a rule, "adam-ld" would quietly be adam minus ld.
            as_rule = (f"; for the rule {match[1]} minus {match[2]}, write "
                       f"'{match[1]} - {match[2]}'" if match[1] in vocab.OPERANDS else "")
            raise ValueError(f"{text!r}: only powersign and addsign take a sign decay{as_rule}")
        name_like = _NAME_LIKE.match(text.lower())
        if not match and name_like and name_like[2] and name_like[1] in _NAMED_LABELS:
            raise ValueError(  # "powersign-xd"
                f"unknown optimizer {text!r}: -{name_like[2]} is not a sign decay (powersign "
                f"and addsign take {_SUFFIXES_TEXT})")
        if not match:
            try:
                return cls(text, str(nos_tf.parse(text)))
            except nos_tf.RuleSyntaxError as error:
                if not name_like:
                    raise
                raise ValueError(
                    f"unknown optimizer {text!r}: the names are {', '.join(_NAMED_LABELS)} "
                    f"(powersign and addsign also with a sign decay: {_SUFFIXES_TEXT}), and "
                    f"any other text is read as a rule, which {text!r} is not: {error.reason}"
                ) from None
        name, decay = match.groups()
        label = _NAMED_LABELS[name] + (f"-{decay}" if decay else "")
        return cls(text.lower(), label, name, _SIGN_DECAY_SUFFIXES.get(decay))

    def build(self, learning_rate, total_steps: int, seed: int = 0, **kwargs):
        """A fresh Keras optimizer; `total_steps` is T of the decays (ld, cd, rd)."""
        import keras  # pylint: disable=import-outside-toplevel
        import nos_tf  # pylint: disable=import-outside-toplevel

        if self.name is None:
            return nos_tf.RuleOptimizer(self.text, learning_rate, decay_steps=total_steps,
                                        seed=seed, **kwargs)
        if self.name in _SIGN_OPTIMIZERS:
            optimizer = nos_tf.PowerSign if self.name == "powersign" else nos_tf.AddSign
            return optimizer(learning_rate, sign_decay=self.sign_decay,
                             decay_steps=total_steps if self.sign_decay else None, **kwargs)
        optimizer, arguments = {
            "sgd": (keras.optimizers.SGD, {}),
            "momentum": (keras.optimizers.SGD, {"momentum": _MOMENTUM}),
            "adam": (keras.optimizers.Adam, {}),
            "rmsprop": (keras.optimizers.RMSprop, {}),
        }[self.name]
        return optimizer(learning_rate, **arguments, **kwargs)


def split_optimizer_list(text: str) -> list[str]:
    """Splits at commas outside parentheses, so rules like `clip(m, 1e-4) * exp(v)` stay
    whole; an item may be quoted ("..." or '...') as it would be in a flagfile."""
    items, depth, current = [], 0, []
    for char in text:
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current.append(char)
    items.append("".join(current))
    items = [item.strip() for item in items]
    items = [item[1:-1].strip() if len(item) > 1 and item[0] == item[-1] and item[0] in "\"'"
             else item for item in items]
    return [item for item in items if item]


class OptimizerListParser(flags.ArgumentParser):
    """An absl flag of names and rule texts (transfer's --optimizers), each checked as the
    flags are parsed: a typo is absl's one-line error naming the flag, before any data loads."""

    syntactic_help = "a comma-separated list of optimizer names and rule texts"

    def parse(self, argument):
        if isinstance(argument, list):
            return argument
        specs = [OptimizerSpec.parse(item) for item in split_optimizer_list(argument)]
        if not specs:
            raise ValueError("name at least one optimizer")
        return [spec.text for spec in specs]

    def flag_type(self):
        return "optimizer list"
