"""The rules Bello et al. (2017) found, by name: PowerSign, AddSign and the paper's table.

PowerSign and AddSign are `RuleOptimizer`s whose rule is written from their arguments:

    PowerSign: α^{f(t)·sign(g)·sign(m)} · g      (α = base, e by default)
    AddSign:   (α + f(t)·sign(g)·sign(m)) · g    (α = alpha, 1 by default)

with f(t) = 1 or one of the sign decays `linear` (ld), `cosine` (cd), `restart` (rd) of
TF1's `sign_decay.py`. They match TensorFlow's fused kernels `ResourceApplyPowerSign` and
`ResourceApplyAddSign` step for step (tests/test_named.py).
"""

from __future__ import annotations

import math

import keras

from nos_tf.optimizer import RuleOptimizer, check_number
from nos_tf.rules.syntax import format_number

SIGN_DECAYS = {None: None, "linear": "ld", "cosine": "cd", "restart": "rd"}

# The rules of the paper's Wide ResNet table (section 5), and AddSign, in
# this language's text form.
PAPER_RULES: dict[str, str] = {
    "powersign_clip": "(exp(sign(g) * sign(m)) + clip(g, 1e-4)) * g",
    "clip_m_exp_v": "clip(m, 1e-4) * exp(v)",
    "m_exp_v": "m * exp(v)",
    "powersign": "g * exp(sign(g) * sign(m))",
    "drop_g_0.3_powersign": "drop(g, 0.3) * exp(sign(g) * sign(m))",
    "m_exp_g2": "m * exp(g2)",
    "drop_m_0.1_div_exp_g2": "drop(m, 0.1) / exp(g2)",
    "drop_g_0.1_powersign": "drop(g, 0.1) * exp(sign(g) * sign(m))",
    "clip_rmsprop_plus_drop_m": "clip(rmsprop, 1e-5) + drop(m, 0.3)",
    "adam_powersign": "adam * exp(sign(g) * sign(m))",
    "adam_exp_m": "adam * exp(m)",
    "g_plus_drop_m": "g + drop(m, 0.3)",
    "drop_m_exp_g3": "drop(m, 0.1) * exp(g3)",
    "g_minus_clip_g2": "g - clip(g2, 1e-4)",
    "exp_g_minus_exp_m": "exp(g) - exp(m)",
    "drop_m_exp_w": "drop(m, 0.3) * exp(1e-3 * w)",
    "addsign": "(1 + sign(g) * sign(m)) * g",
}


def _sign_factor(sign_decay: str | None) -> str:
    """`sign(g) * sign(m)`, scaled by the decay operand when there is one."""
    if sign_decay not in SIGN_DECAYS:
        raise ValueError(
            f"`sign_decay` must be one of {list(SIGN_DECAYS)}. Received: {sign_decay!r}"
        )
    operand = SIGN_DECAYS[sign_decay]
    return "sign(g) * sign(m)" if operand is None else f"{operand} * sign(g) * sign(m)"


def powersign_rule(base: float = math.e, sign_decay: str | None = None) -> str:
    check_number("base", base, "positive", lambda base: base > 0)
    log_base = math.log(base)
    scale = "" if log_base == 1.0 else f"{format_number(log_base)} * "
    return f"g * exp({scale}{_sign_factor(sign_decay)})"


def addsign_rule(alpha: float = 1.0, sign_decay: str | None = None) -> str:
    check_number("alpha", alpha)
    return f"({format_number(float(alpha))} + {_sign_factor(sign_decay)}) * g"


# RuleOptimizer's arguments that a named optimizer sets itself (its m's decay is `beta`)
# or has no use for (PowerSign and AddSign read no v, y or random operand).
_RULE_ARGUMENTS = ("rule", "beta_1", "beta_2", "beta_3", "seed")


def _check_arguments(optimizer: str, kwargs: dict) -> None:
    """Refuses RuleOptimizer's own arguments, which would otherwise vanish from the
    config or clash with the rule the optimizer writes."""
    unexpected = [name for name in _RULE_ARGUMENTS if name in kwargs]
    if unexpected:
        raise ValueError(
            f"{optimizer} does not take {', '.join(f'`{name}`' for name in unexpected)}: "
            "its running average's decay is `beta`, and it has no other state or "
            "randomness. Use nos_tf.RuleOptimizer for a rule of your own."
        )


def _check_sign_decay(sign_decay, decay_steps) -> None:
    """A sign decay needs decay_steps, said in the user's words: RuleOptimizer's own
    message would blame the rule written from them (`ld * sign(g) * sign(m)`), which the
    user never wrote. An unknown name is refused first, by `_sign_factor`."""
    _sign_factor(sign_decay)
    if sign_decay is not None and decay_steps is None:
        raise ValueError(
            f"sign_decay={sign_decay!r} needs decay_steps (the number of updates the decay "
            "runs over). Pass decay_steps=T."
        )


def _check_beta(beta) -> None:
    """`beta` under its own name: RuleOptimizer would call it beta_1."""
    check_number("beta", beta, "in [0, 1)", lambda beta: 0.0 <= beta < 1.0)


def _written_into_the_rule(name: str) -> property:
    """A named optimizer's argument that its rule text is made from at construction:
    readable, and refused when set afterwards. Set, it changed what `get_config` saved
    (and so what a loaded copy trained with) but not the rule this one trains with."""
    def refuse(self, value):
        del value
        raise AttributeError(
            f"{type(self).__name__}.{name} is written into its rule at construction: make "
            f"a new {type(self).__name__}({name}=...)")
    return property(lambda self: getattr(self, f"_{name}"), refuse)


# beta is RuleOptimizer's beta_1 (read as the update is traced), under the paper's name.
_BETA = property(lambda self: self.beta_1,
                 lambda self, beta: setattr(self, "beta_1", beta))


def _named_config(rule_config: dict, **arguments) -> dict:
    """A named optimizer's config: its own arguments, from which it rewrites its rule."""
    config = {key: value for key, value in rule_config.items() if key not in _RULE_ARGUMENTS}
    config.update(arguments)
    return config


@keras.saving.register_keras_serializable(package="nos_tf")
class PowerSign(RuleOptimizer):
    """PowerSign (Bello et al., 2017): `w ← w − lr · base^{f(t)·sign(g)·sign(m)} · g`.

    The step grows by `base` where the gradient agrees in sign with its running average
    and shrinks by 1/base where it does not.

    Args:
      learning_rate: float, schedule or callable.
      base: α > 0. Defaults to e.
      beta: decay of the running average m. Defaults to 0.9.
      sign_decay: None, "linear", "cosine" or "restart": f(t), the sign term's decay.
      decay_steps: T of the sign decay; required with a sign decay, unused without.
      **kwargs: the base Keras optimizer arguments (weight_decay, clipnorm, ...).
    """

    def __init__(
        self, learning_rate=0.001, base=math.e, beta=0.9, sign_decay=None, decay_steps=None,
        name=None, **kwargs,
    ):
        _check_arguments("PowerSign", kwargs)
        _check_beta(beta)
        _check_sign_decay(sign_decay, decay_steps)
        super().__init__(
            powersign_rule(base, sign_decay), learning_rate=learning_rate, beta_1=beta,
            decay_steps=decay_steps, name=name, **kwargs,
        )
        self._base, self._sign_decay = base, sign_decay

    base = _written_into_the_rule("base")
    sign_decay = _written_into_the_rule("sign_decay")
    beta = _BETA

    def get_config(self):
        return _named_config(
            super().get_config(), base=self.base, beta=self.beta, sign_decay=self.sign_decay
        )


@keras.saving.register_keras_serializable(package="nos_tf")
class AddSign(RuleOptimizer):
    """AddSign (Bello et al., 2017): `w ← w − lr · (α + f(t)·sign(g)·sign(m)) · g`.

    With α = 1 the step doubles where the gradient agrees in sign with its running
    average and vanishes where it does not.

    Args:
      learning_rate: float, schedule or callable.
      alpha: α. Defaults to 1.
      beta: decay of the running average m. Defaults to 0.9.
      sign_decay: None, "linear", "cosine" or "restart": f(t), the sign term's decay.
      decay_steps: T of the sign decay; required with a sign decay, unused without.
      **kwargs: the base Keras optimizer arguments (weight_decay, clipnorm, ...).
    """

    def __init__(
        self, learning_rate=0.001, alpha=1.0, beta=0.9, sign_decay=None, decay_steps=None,
        name=None, **kwargs,
    ):
        _check_arguments("AddSign", kwargs)
        _check_beta(beta)
        _check_sign_decay(sign_decay, decay_steps)
        super().__init__(
            addsign_rule(alpha, sign_decay), learning_rate=learning_rate, beta_1=beta,
            decay_steps=decay_steps, name=name, **kwargs,
        )
        self._alpha, self._sign_decay = alpha, sign_decay

    alpha = _written_into_the_rule("alpha")
    sign_decay = _written_into_the_rule("sign_decay")
    beta = _BETA

    def get_config(self):
        return _named_config(
            super().get_config(), alpha=self.alpha, beta=self.beta, sign_decay=self.sign_decay
        )
