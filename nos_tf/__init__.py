"""nos_tf: Neural Optimizer Search (Bello et al., 2017) in TensorFlow 2 / Keras 3.

    import nos_tf
    model.compile(optimizer=nos_tf.RuleOptimizer("g * exp(sign(g) * sign(m))", learning_rate=1e-3))
    model.compile(optimizer=nos_tf.PowerSign(learning_rate=1e-3, sign_decay="linear", decay_steps=10_000))

Binaries: `python -m nos_tf.search`, `nos_tf.evaluate`, `nos_tf.transfer`, `nos_tf.report`.
"""

from nos_tf.named import PAPER_RULES, AddSign, PowerSign
from nos_tf.optimizer import RuleOptimizer
from nos_tf.rules import Rule, RuleSyntaxError, TokenSpace, parse, screen, simplify

__version__ = "0.1.0"

__all__ = [
    "AddSign", "PAPER_RULES", "PowerSign", "Rule", "RuleOptimizer", "RuleSyntaxError",
    "TokenSpace", "parse", "screen", "simplify",
]
