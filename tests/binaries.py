"""Running the project's binaries as a user does: `python -m <module>` in the checkout.

The test files that check a command line import this (pytest puts tests/ on sys.path).
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLAGS_DIR = REPO / "flags"
# TensorFlow's C++ start-up lines would bury what the tests read on stderr; a GPU, where
# there is one, would change timings and numerics the tests compare.
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def command(module: str, *args) -> list[str]:
    return [sys.executable, "-m", module, *(str(arg) for arg in args)]


def run(module: str, *args, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs the binary to the end; its exit status and output, as text."""
    return subprocess.run(command(module, *args), cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def _interruptible() -> None:
    """Gives the binary Ctrl-C's default action however the tests were started: a shell
    without job control starts a command run with `&` with SIGINT ignored, its children
    inherit that, and Python then installs no KeyboardInterrupt handler (the Ctrl-C tests
    failed so, the binaries running on to the end)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen(module: str, *args, **kwargs) -> subprocess.Popen:
    """Starts the binary in the background, as `run` runs it, able to be interrupted."""
    return subprocess.Popen(command(module, *args), cwd=REPO, env=ENV,
                            preexec_fn=_interruptible, **kwargs)


def start(module: str, *args) -> subprocess.Popen:
    """Starts the binary in the background, its output discarded (for tests that kill it)."""
    return popen(module, *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_python(code: str, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs `python -c code args` as `run` runs a binary: for what a test must do in a
    process of its own (absl's flags are process-wide, and so is a patched module)."""
    return subprocess.run([sys.executable, "-c", code, *(str(arg) for arg in args)],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)


def run_without(missing: str, module: str, *args,
                timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs the binary as `run` does, in a Python where `import <missing>` fails: what a
    user who installed nos_tf without the extra that brings it meets."""
    main = (f"import sys; sys.modules[{missing!r}] = None; from absl import app; "
            f"import {module} as binary; app.run(binary.main)")
    return run_python(main, *args, timeout=timeout)
