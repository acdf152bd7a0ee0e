"""`python -m nos_tf.evaluate`: the command line a user runs, on the smoke preset."""

import re
import signal
import subprocess

import binaries
import pytest
from absl import flags
from absl.testing import flagsaver

from nos_tf import data, evaluate, proxy

SMOKE = binaries.FLAGS_DIR / "smoke.cfg"


def _run(*args):
    return binaries.run("nos_tf.evaluate", f"--flagfile={SMOKE}", *args)


def test_prints_reward_lr_table_and_baselines():
    done = _run("--rule=g * exp(sign(g) * sign(m))", "--rule=-g", "--baselines")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    block = out.split("g * exp(sign(g) * sign(m))\n", 1)[1]
    assert "status ok" in block.splitlines()[0] and "<- chosen" in block
    for rate in ("0.001", "0.01", "0.1"):
        assert any(line.split()[:1] == [rate] for line in block.splitlines())
    assert "not a descent direction" in out  # -g, rejected before training.
    summary = out.rsplit("reward    ± std", 1)[1]
    for name in ("SGD", "Momentum", "Adam", "RMSProp", "-g"):
        assert any(line.endswith(f"  {name}") for line in summary.splitlines()), name
    best = float(summary.splitlines()[1].split()[0])
    assert best > 0.5


def test_the_table_shows_how_much_training_each_score_is_after():
    """A rate halving pruned is scored after fewer steps; the table must not pass its
    accuracy off as a full lr-search score."""
    result = proxy.EvalResult(
        rule="g", fingerprint="", reward=0.9, status="ok", lr=0.01,
        lr_scores={0.001: 0.2, 0.01: 0.7, 0.1: 0.6}, lr_steps={0.001: 3, 0.01: 5, 0.1: 5})
    rows = {line.split()[0]: line.split() for line in evaluate.format_result(result).splitlines()
            if line.split()[0] in ("0.001", "0.01", "0.1", "lr")}
    assert rows["lr"] == ["lr", "val_acc", "steps"]
    assert rows["0.001"] == ["0.001", "0.2000", "3"]
    assert rows["0.01"] == ["0.01", "0.7000", "5", "<-", "chosen"]


def test_the_table_tells_a_diverged_rate_from_a_pruned_one():
    """Both stopped early; a diverged run's 0 is no accuracy, a pruned one's is."""
    result = proxy.EvalResult(
        rule="g", fingerprint="", reward=0.9, status="ok", lr=0.01,
        lr_scores={0.001: 0.2, 0.01: 0.7, 0.1: 0.0}, lr_steps={0.001: 3, 0.01: 5, 0.1: 2},
        diverged_lrs=[0.1])
    lines = evaluate.format_result(result).splitlines()
    rows = {line.split()[0]: line.split() for line in lines}
    assert rows["0.1"] == ["0.1", "diverged", "2"]
    assert rows["0.001"] == ["0.001", "0.2000", "3"]
    table = [line.split("  <-")[0] for line in lines[2:]]  # Columns aligned.
    assert len({len(line) for line in table}) == 1, table


def test_a_rule_named_twice_is_scored_once(capsys):
    """The summary gathers results by rule text: a repeated --rule read as a second seed's
    score, with a spread of ± 0 and the cache hit's ~0 s halving the wall time."""
    _main_with("--rule=g", "--rule=g ", "--learning_rates=0.1", "--epochs=1")
    out = capsys.readouterr().out
    assert out.count("\ng\n  reward") == 1
    summary = out.rsplit("reward    ± std", 1)[1].splitlines()[1:]
    assert len(summary) == 1 and summary[0].split()[1] == "-"


def test_the_summary_leaves_errors_out_of_the_mean_and_orders_rates_by_value():
    def result(reward, status, lr):
        return proxy.EvalResult(rule="g", fingerprint="", reward=reward, status=status, lr=lr)

    summary = evaluate.format_summary({
        "g": [result(0.8, "ok", 1e-3), result(0.0, "error", None), result(0.6, "ok", 1e-5)],
        "m": [result(0.0, "error", None)]}).splitlines()
    assert summary[1].split() == ["0.7000", "0.1414", "error,ok", "1e-05,0.001,-", "0.0", "g"]
    assert summary[2].split() == ["-", "-", "error", "-", "0.0", "m"]
    # The first scored pays for tracing: its seconds say so (it read as the slower rule).
    assert summary[3] == ("s: wall seconds an evaluation; g's include building and tracing "
                          "the child network, which every evaluation after reuses.")


def test_each_seed_from_proxy_seed_on_is_scored_under_its_own_seed(capsys):
    """--num_seeds=2 --proxy_seed=3: seeds 3 and 4, each its own split, weights and batches
    (one protocol for both would score ± 0)."""
    _main_with("--rule=g", "--proxy_seed=3", "--num_seeds=2", "--learning_rates=0.1",
               "--epochs=1")
    out = capsys.readouterr().out
    assert re.findall(r"^# proxy seed (\d+)", out, re.MULTILINE) == ["3", "4"]
    summary = out.rsplit("reward    ± std", 1)[1].splitlines()[1]
    assert summary.split()[-1] == "g" and float(summary.split()[1]) > 0


def test_the_last_seed_is_checked_before_the_first_trains():
    with pytest.raises(flags.IllegalFlagValueError, match="must be below 2\\*\\*31"):
        _main_with("--rule=g", "--proxy_seed=2147483647", "--num_seeds=2")


USAGE_ERRORS = [
    ((), "error: nothing to score: pass --rule=RULE (repeatable) or --baselines"),
    (("--rule=g", "extra"), "error: unexpected arguments: extra"),
    # The preset's --undefok passes over the search's flags in its file; here, the
    # child's batch (--child_batch_size) stayed 100.
    (("--rule=g", "--batch_size=10"), "error: --batch_size is not a flag of this program "
     "(a preset's --undefok passes over the flags of other binaries in its file, not here)"),
    # The loader's words, its argument named as the flag.
    (("--rule=g", "--validation_examples=100000"), "error: --validation_examples=100000 must "
     "be between 1 and 1436: digits has 1437 training examples"),
]
NOT_IN_THE_LANGUAGE = ("--rule=g", "--rule=g * (m")


@pytest.fixture(scope="module")
def refused_evaluations():
    """The binary run with each of USAGE_ERRORS' arguments and NOT_IN_THE_LANGUAGE, in one
    process (`binaries.run_each`): {arguments: process}."""
    commands = [args for args, _ in USAGE_ERRORS] + [NOT_IN_THE_LANGUAGE]
    processes = binaries.run_each(
        "nos_tf.evaluate", [[f"--flagfile={SMOKE}", *args] for args in commands])
    return dict(zip(commands, processes))


@pytest.mark.xdist_group("refused_evaluations")
@pytest.mark.parametrize("args, message", USAGE_ERRORS)
def test_usage_errors_are_one_line_as_the_search_says_them(refused_evaluations, args, message):
    # They were app.UsageErrors: absl printed the module's docstring and every flag, some
    # 90 lines, above the one that says what is wrong.
    done = refused_evaluations[args]
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == message
    assert "--num_seeds" not in done.stderr and "Traceback" not in done.stderr
    assert "# proxy seed" not in done.stdout


@pytest.mark.xdist_group("refused_evaluations")
def test_a_rule_not_in_the_language_is_a_flag_error_before_any_training(refused_evaluations):
    done = refused_evaluations[NOT_IN_THE_LANGUAGE]
    assert done.returncode != 0
    assert "flag --rule" in done.stderr and "was never closed at position 4" in done.stderr
    assert "Traceback" not in done.stderr and "# proxy seed" not in done.stdout


def test_ctrl_c_prints_the_summary_of_what_finished(tmp_path):
    with open(tmp_path / "stderr", "w+") as stderr_file:
        process = binaries.popen(
            "nos_tf.evaluate", f"--flagfile={SMOKE}", "--rule=g", "--baselines",
            "--num_seeds=20", stdout=subprocess.PIPE, stderr=stderr_file, text=True)
        try:
            for line in process.stdout:
                if line.startswith("  reward"):  # the first result is out
                    break
            process.send_signal(signal.SIGINT)
            stdout = process.stdout.read()  # what the loop's read-ahead left, then the rest
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
        stderr_file.seek(0)
        stderr = stderr_file.read()
    assert process.returncode == 130, stderr[-3000:]
    assert "Interrupted: the summary holds what finished." in stderr
    assert "Traceback" not in stderr
    assert "reward    ± std" in stdout and stdout.rstrip().endswith("  g")


def _main_with(*args):
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["evaluate", f"--flagfile={SMOKE}", *args])
        evaluate.main(["evaluate"])


def test_ctrl_c_before_any_result_promises_no_summary(monkeypatch, capsys):
    def interrupted(config, results_by_name):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "_score", interrupted)
    with pytest.raises(SystemExit) as exit_:
        _main_with("--rule=g")
    assert exit_.value.code == 130
    captured = capsys.readouterr()
    assert captured.err.strip() == "Interrupted before any rule finished." and not captured.out


@pytest.mark.parametrize("flag, message", [
    ("--learning_rates=1e-3,fast", "--learning_rates must be numbers"),
    ("--learning_rates=0,1", "learning_rates must be positive"),
    ("--lr_search_epochs=4", "need 1 <= lr_search_epochs <= epochs, got 4 and 3"),
    ("--proxy_seed=-1", "seed must be in [0, 2**31), got -1"),
    ("--child_batch_size=501", "batch_size 501 is above train_examples 500"),  # 1 step.
])
def test_an_impossible_protocol_is_a_flag_error(flag, message):
    # Found while parsing, where absl names the flags in a line, not in main, where an
    # app.UsageError printed the docstring and every flag above the message.
    with pytest.raises(flags.IllegalFlagValueError, match=re.escape(message)):
        _main_with("--rule=g", flag)


def test_unavailable_dataset_exits_with_the_loaders_advice(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_internet_reachable", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        _main_with("--rule=g", "--dataset=cifar10", f"--data_dir={tmp_path}")
    assert "cifar10" in str(exit_.value.code) and "--data_dir" in str(exit_.value.code)
