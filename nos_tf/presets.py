"""Where the absl flagfiles of `flags/` are: `python -m nos_tf.presets [NAME]`.

The presets are files, not modules: a checkout has them in `flags/` beside the package,
and `pip install` puts them in `<prefix>/share/nos_tf/flags` (setup.py's `data_files`),
outside any package. So that a command of the README runs from an installed package too,
this finds them either way:

    F=$(python -m nos_tf.presets cpu) && python -m nos_tf.search --flagfile="$F"

(with `&&`: a mistyped name prints an error and nothing, and an empty `--flagfile=`
would run the defaults).

With no NAME it lists the presets, each with its path.
"""

import os
import site
import sys

from absl import app

SHARE = os.path.join("share", "nos_tf", "flags")
"""Where setup.py installs the presets, under an install prefix."""


def directories() -> list[str]:
    """Where presets may be, in the order they are looked for: the checkout's `flags/`
    (this package's parent folder), then the install prefixes' shares (a virtual
    environment's or the system's, then the user's of `pip install --user`)."""
    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "flags")
    return [checkout, *(os.path.join(prefix, SHARE)
                        for prefix in (sys.prefix, sys.base_prefix, site.USER_BASE))]


def available() -> dict[str, str]:
    """Each preset's name (its file name without `.cfg`) and path, from the first folder of
    `directories()` that has any."""
    for directory in directories():
        if os.path.isdir(directory):
            names = sorted(name for name in os.listdir(directory) if name.endswith(".cfg"))
            if names:
                return {name[:-len(".cfg")]: os.path.join(directory, name) for name in names}
    return {}


def _available_or_raise() -> dict[str, str]:
    presets = available()
    if not presets:
        raise FileNotFoundError(
            "no presets found: looked in " + ", ".join(directories()) + " (a checkout has "
            "them in flags/; pip install puts them in <prefix>/share/nos_tf/flags)")
    return presets


def path(name: str) -> str:
    """The flagfile of preset `name` (`cpu`, `transfer_wrn_cpu`, or `cpu.cfg`)."""
    presets = _available_or_raise()
    name = name.removesuffix(".cfg")
    if name not in presets:
        raise FileNotFoundError(f"no preset {name!r}: choose one of {', '.join(presets)}")
    return presets[name]


def main(argv):
    if len(argv) > 2:
        sys.exit(f"error: give one preset's name, got {' '.join(argv[1:])}")
    try:
        if len(argv) == 2:
            print(path(argv[1]))
            return
        presets = _available_or_raise()
    except FileNotFoundError as error:
        sys.exit(f"error: {error}")
    width = max(map(len, presets))
    for name, file in presets.items():
        print(f"{name:<{width}}  {file}")


if __name__ == "__main__":
    app.run(main)
