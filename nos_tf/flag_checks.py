"""Checks on absl flags that absl's own bounds do not make.

`DEFINE_float(..., lower_bound=0)` lets nan through (every comparison with nan is false)
and inf past any lower bound: `--weight_decay=nan` was found only when the optimizer was
built, after the data had loaded, in Keras's words about its own argument. A binary calls
`require_finite` on its number flags, and the value is refused as the flags are parsed,
in absl's message naming the flag.
"""

import math
import sys

from absl import app, flags


def require_finite(*holders: flags.FlagHolder, positive: bool = False) -> None:
    """Refuses nan and ±inf for each flag (None, an unset optional flag, passes), and with
    `positive`, values that are not above 0."""
    for holder in holders:
        requirement = "a positive finite number" if positive else "a finite number"
        flags.register_validator(
            holder.name,
            lambda value: value is None or math.isfinite(value) and (not positive or value > 0),
            f"--{holder.name} must be {requirement}")


def parse_flags_of_the_command_line(argv: list[str]) -> list[str]:
    """absl's flag parsing for every binary's `app.run(main, flags_parser=...)`, which
    then refuses, in a line, a flag typed on the command line that the program does not
    define (`refuse_undefined_flags_of_the_command_line`: the presets' `--undefok`
    passes over other binaries' flags), and says in a line that a flagfile is not text,
    where absl raised UnicodeDecodeError from inside its parser (`--flagfile=model.h5`)."""
    try:
        remaining = app.parse_flags_with_usage(argv)
    except UnicodeDecodeError as error:
        sys.exit(f"FATAL Flags parsing error: {_undecodable_flagfile(argv[1:])} is not a "
                 f"text file of flags ({error.reason} at byte {error.start})")
    try:
        refuse_undefined_flags_of_the_command_line(argv[1:])
    except ValueError as error:
        sys.exit(f"error: {error}")
    return remaining


def _undecodable_flagfile(argv: list[str]) -> str:
    """`--flagfile=PATH` for the first flagfile of `argv`, or of a flagfile it names,
    that is not UTF-8 text (as absl reads them); else "a --flagfile"."""
    pending = [argument.partition("=")[2] for argument in argv
               if argument.startswith(("--flagfile=", "-flagfile="))]
    while pending:
        path = pending.pop(0)
        try:
            with open(path, encoding="utf-8") as file:
                lines = file.read().splitlines()
        except UnicodeDecodeError:
            return f"--flagfile={path}"
        except OSError:
            continue
        pending += [line.strip().partition("=")[2] for line in lines
                    if line.strip().startswith(("--flagfile=", "-flagfile="))]
    return "a --flagfile"


def refuse_undefined_flags_of_the_command_line(
        argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Raises ValueError naming a flag typed on the command line (`argv`, without the
    program: as typed, flagfiles unread) that this program (`flag_values`) does not
    define.

    absl lets such a flag through when an `--undefok` names it, and a preset's does
    (flags/cpu.cfg passes over the search's flags, which `nos_tf.evaluate` also reads the
    file for); but its `--undefok` holds for the whole command line, so
    `evaluate --flagfile=flags/cpu.cfg --batch_size=10` ran with the child's batch
    unchanged (that is `--child_batch_size`). Flags the command line's own `--undefok`
    names stay passed over.
    """
    arguments = iter(argv)
    typed, passed_over = [], {"flagfile", "undefok"}
    for argument in arguments:
        if argument == "--":  # absl's end of the flags.
            break
        name, equals, value = argument.lstrip("-").partition("=")
        if not argument.startswith("-") or not name:
            continue
        if name == "undefok":
            passed_over.update(undefok.strip() for undefok in value.split(","))
        elif name in flag_values and not equals and not _is_bool(name, flag_values):
            next(arguments, None)  # `--rule -g`: the value, not a flag.
        typed.append(name)
    for name in typed:
        defined = name in flag_values or (
            name.startswith("no") and _is_bool(name[2:], flag_values))
        if not (defined or name in passed_over or name.removeprefix("no") in passed_over):
            raise ValueError(f"--{name} is not a flag of this program (a preset's --undefok "
                             "passes over the flags of other binaries in its file, not here)")


def _is_bool(name: str, flag_values: flags.FlagValues) -> bool:
    return name in flag_values and isinstance(flag_values[name], flags.BooleanFlag)
