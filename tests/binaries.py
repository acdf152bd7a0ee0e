"""Running the project's binaries as a user does: `python -m <module>` in the checkout.

The test files that check a command line import this (pytest puts tests/ on sys.path).
"""

import importlib.util
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import traceback
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


def run_each(module: str, commands: list[list], timeout: float = 600
             ) -> list[subprocess.CompletedProcess]:
    """Runs the binary once for each list of arguments, as `run` does, but all in one
    Python process, one after the other: for the tests of a binary's refusals, where the
    seconds of importing TensorFlow dwarf the binary's own milliseconds (a test suite of
    thirty refusals spent three minutes importing it).

    Each run is `python -m module` as far as the binary can tell: executed afresh as
    `__main__` (`runpy`), absl's start-up done again (its flags defined again, the others
    at their defaults, logging at INFO), its own stdout and stderr, its exit status as
    Python's would be. But it shares the process with the runs before it: TensorFlow's
    start-up lines are in the first run's stderr only, what is printed as Python exits
    in none, the process ID is the same, and what one run leaves in other modules (a
    cache, TensorFlow's state) the next sees. A test of more than a refusal runs its
    binary with `run`.

    The tests that read the runs of one call take them from a module-scoped fixture, and
    are marked with one `pytest.mark.xdist_group`: `make test` runs a group's tests in
    one test process (`--dist loadgroup`), which makes the fixture once.
    """
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, __file__, module, folder,
                        json.dumps([[str(arg) for arg in args] for args in commands])],
                       cwd=REPO, env=ENV, check=True, timeout=timeout)
        return [subprocess.CompletedProcess(
                    [module, *args], int(Path(folder, f"{i}.status").read_text()),
                    Path(folder, f"{i}.stdout").read_text(),
                    Path(folder, f"{i}.stderr").read_text())
                for i, args in enumerate(commands)]


def _run_here(module: str, args: list[str], stdout: Path, stderr: Path) -> int:
    """One of `run_each`'s runs, in this process: `python -m module args`'s exit status,
    its output written to the two files (by file descriptor, so TensorFlow's C++ lines
    and absl's log go there too)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(stdout, "w") as out, open(stderr, "w") as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            _start_afresh(module)
            sys.argv = [module, *args]
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            status = 0
        except SystemExit as exit:  # Python's exit status for each kind of code.
            if exit.code is None or isinstance(exit.code, int):
                status = int(exit.code or 0) & 0xFF
            else:
                print(exit.code, file=sys.stderr)
                status = 1
        except KeyboardInterrupt:  # Python ends itself with the signal.
            traceback.print_exc()
            status = -signal.SIGINT
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
    return status


def _start_afresh(module: str) -> None:
    """Puts absl as it was before `module` last ran as `__main__`.

    The flags it defines are removed, as it defines them again as it runs again (absl
    takes that for a module imported twice only while the previous module object lives,
    keeping the first run's flags, and refuses a flag defined twice when the new module
    reuses its memory); the others go back to their defaults. absl's one-time start-up in
    `app.run` is made to run again: only the first run would otherwise parse the flags
    with their usage checks and set logging to INFO (`unparse_flags` puts it back at
    WARNING).
    """
    from absl import app, flags
    spec = importlib.util.find_spec(module)
    if spec.submodule_search_locations is not None:  # A package runs its __main__.py.
        spec = importlib.util.find_spec(f"{module}.__main__")
    for flag in list(flags.FLAGS.flags_by_module_dict().get(spec.origin, ())):
        for name in {flag.name, flag.short_name} - {None}:
            if name in flags.FLAGS:
                delattr(flags.FLAGS, name)
    flags.FLAGS.unparse_flags()
    app._run_init.done = False
    app._register_and_parse_flags_with_usage.done = False


if __name__ == "__main__":  # run_each's process.
    sys.path[0] = str(REPO)  # As `python -m` in the checkout has it, not tests/.
    _module, _folder, _commands = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    for _i, _args in enumerate(_commands):
        _status = _run_here(_module, _args, _folder / f"{_i}.stdout", _folder / f"{_i}.stderr")
        (_folder / f"{_i}.status").write_text(str(_status))
