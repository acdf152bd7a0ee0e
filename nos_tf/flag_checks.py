"""Checks on absl flags that absl's own bounds do not make.

`DEFINE_float(..., lower_bound=0)` lets nan through (every comparison with nan is false)
and inf past any lower bound: `--weight_decay=nan` was found only when the optimizer was
built, after the data had loaded, in Keras's words about its own argument. A binary calls
`require_finite` on its number flags, and the value is refused as the flags are parsed,
in absl's message naming the flag.
"""

import math

from absl import flags


def require_finite(*holders: flags.FlagHolder, positive: bool = False) -> None:
    """Refuses nan and ±inf for each flag (None, an unset optional flag, passes), and with
    `positive`, values that are not above 0."""
    for holder in holders:
        requirement = "a positive finite number" if positive else "a finite number"
        flags.register_validator(
            holder.name,
            lambda value: value is None or math.isfinite(value) and (not positive or value > 0),
            f"--{holder.name} must be {requirement}")
