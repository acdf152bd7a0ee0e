"""The benchmarks run end to end at toy sizes (their figures come from full runs, not here)."""

import dataclasses
import json
import math
import warnings

import binaries
import numpy as np
import pytest
from absl import app


def run_benchmark(name, *args):
    return binaries.run(f"nos_tf.benchmarks.{name}", *args)


def test_search_efficiency_compares_ppo_with_random_search():
    # PPO's search of seed 17 reaches tuned Adam's reward at its third evaluation.
    process = run_benchmark("search_efficiency", "--seeds=2", "--first_seed=17",
                            "--evaluations=12", "--batch_size=6")
    assert process.returncode == 0, process.stderr[-3000:]
    out = process.stdout
    target = float(out.split("tuned Adam's reward (the target): ")[1].split()[0])
    assert 0.3 < target < 1.0  # Adam makes real progress on the problems.
    assert "12 evaluations x 2 seeds from 17," in out
    assert "\nppo  (" in out and "\nrandom  (" in out
    assert out.count("best reward after 12:") == 2  # one line per searcher
    assert out.count("evaluations to tuned Adam's reward: ") == 2
    assert out.count("distinct rules trained until then") == 2
    ppo = out.split("\nppo  (")[1]
    best = [float(reward) for reward in
            ppo.split("best reward after 12: ")[1].split("   mean")[0].split()]
    reached = ppo.split("evaluations to tuned Adam's reward: ")[1].splitlines()[0].split()
    assert reached[0] == "3" and best[0] >= target  # Each search's best, not its worst.
    closing = out.split("evaluations to tuned Adam, ppo / random (95% bootstrap interval "
                        "over seeds): mean ")[1]
    assert "median " in closing and "target <= 0.5" in closing
    assert "distinct rules trained to tuned Adam, ppo / random: median " in closing
    assert "\nsearches that reached tuned Adam: ppo " in out  # Beside the ratios.

    # Where no search reached the target, every one counts the budget: no 1.00 "ratio".
    process = run_benchmark("search_efficiency", "--seeds=1", "--first_seed=5",
                            "--evaluations=6", "--batch_size=3")
    assert process.returncode == 0, process.stderr[-3000:]
    assert "neither ppo nor random reached tuned Adam in any search: no ratio" in process.stdout
    assert "ppo / random" not in process.stdout


def test_a_search_pays_for_distinct_rules_that_pass_the_screen():
    import nos_tf
    from nos_tf.benchmarks import search_efficiency

    scored = []
    reward = search_efficiency.CachedReward(lambda rule: scored.append(rule) or 0.5)
    space = nos_tf.TokenSpace(1)
    run = search_efficiency.run_search("random", 3, reward, space, {}, evaluations=60,
                                       batch_size=12)
    screened = [key for key in reward.cache if key in reward.rejected]
    assert screened and len(scored) == len(reward.cache) - len(screened)
    # Counts only grow, by at most one a proposal, and end at the rules actually scored.
    assert np.all(np.diff(run.rules_trained) >= 0) and np.all(np.diff(run.rules_trained) <= 1)
    assert run.rules_trained[-1] == len(scored) < 60
    assert search_efficiency.rules_trained_to_reach(run, 0.5) == 1
    assert search_efficiency.rules_trained_to_reach(run, 0.6) is None


def test_the_functions_reward_scores_the_minimum_reached_in_full_and_divergence_0():
    import nos_tf
    from nos_tf.benchmarks import search_efficiency

    reward = search_efficiency.FunctionsReward(
        ["quadratic"], steps=1, learning_rates=[1.0, 3.0], decades=3.0)
    assert reward(nos_tf.parse("w")) == 1.0  # w - 1.0 * w: exactly 0 in one step.
    assert reward(nos_tf.parse("w * 1e30")) == 0.0  # Overflows to inf, then NaN.
    assert 0.0 < reward(nos_tf.parse("0.5 * w")) < 1.0


@pytest.mark.parametrize("sampled_ahead, order", [
    (False, ["ask 4", "tell", "ask 4", "tell", "ask 2", "tell"]),
    (True, ["ask 4", "ask 4", "tell", "ask 2", "tell", "tell"]),
])
def test_a_search_sampled_ahead_asks_each_batch_before_the_last_is_told(
        monkeypatch, sampled_ahead, order):
    import nos_tf
    from nos_tf.benchmarks import search_efficiency

    events = []

    class Recording:
        def __init__(self, searcher):
            self.searcher = searcher

        def ask(self, n):
            events.append(f"ask {n}")
            return self.searcher.ask(n)

        def tell(self, proposals, rewards):
            events.append("tell")
            return self.searcher.tell(proposals, rewards)

    make = search_efficiency.controller.make_searcher
    monkeypatch.setattr(search_efficiency.controller, "make_searcher",
                        lambda *args, **kwargs: Recording(make(*args, **kwargs)))
    reward = search_efficiency.CachedReward(lambda rule: 0.5)
    run = search_efficiency.run_search("random", 3, reward, nos_tf.TokenSpace(1), {},
                                       evaluations=10, batch_size=4,
                                       sampled_ahead=sampled_ahead)
    assert events == order and len(run.rewards) == 10


def test_random_searchs_expected_evaluations_count_the_budget_as_its_mean_does():
    from nos_tf.benchmarks import search_efficiency

    # Against 1 / p, random search's own censored mean read as 0.91 of itself. An
    # unreached search counts the budget: min(first hit, 240).
    first_hits = np.random.default_rng(0).geometric(0.01, size=200_000)
    assert np.minimum(first_hits, 240).mean() == pytest.approx(
        search_efficiency.expected_to_target(0.01, 240), rel=0.005)
    assert search_efficiency.expected_to_target(0.01, 240) == pytest.approx(91.0, abs=0.1)


def test_interleaved_medians_waits_for_what_a_step_returns():
    # On a GPU a tf.function returns once its kernels are queued: reading back what the
    # step returns makes the time the kernels' own.
    from nos_tf.benchmarks import interleaved_medians

    read = []

    class Result:
        def numpy(self):
            read.append(True)

    interleaved_medians({"step": Result}, steps=2, rounds=2)
    assert len(read) == 3 + 2 * 2  # The warm-up calls too.


def test_step_times_rule_optimizer_with_and_without_its_own_xla_update():
    process = run_benchmark("step", "--steps=1", "--rounds=1")
    assert process.returncode == 0, process.stderr[-3000:]
    rows = [line.split(maxsplit=1)[1].rsplit(maxsplit=2) for line in process.stdout.splitlines()
            if line.lstrip().startswith(("tf.function", "jit_compile"))]
    assert [name for name, _, _ in rows] == [
        "fused ResourceApplyPowerSign", "RuleOptimizer(PowerSign rule)",
        "the same, jit_compile=False", "keras Adam"] * 2
    assert all(float(ms) > 0 for _, ms, _ in rows)


def test_median_to_target_is_exact_under_censoring():
    from nos_tf.benchmarks import search_efficiency

    # Unreached searches (None) sort above every reached one, whatever the budget.
    assert search_efficiency._median_to_target([10, None, 30]) == 30
    assert search_efficiency._median_to_target([10, 20, None, 40]) == 30
    # Half or more never reached the target: the median is not known.
    assert search_efficiency._median_to_target([10, None]) == float("inf")


def test_quarters_hold_at_least_one_value():
    """Under four evaluations a last quarter of len // 4 values was `values[-0:]`: all."""
    from nos_tf.benchmarks import search_efficiency

    values = np.array([0.1, 0.9, 0.9])
    assert search_efficiency._last_quarter(values).tolist() == [0.9]
    assert search_efficiency._first_quarter(values).tolist() == [0.1]
    assert search_efficiency._last_quarter(np.arange(8)).tolist() == [6, 7]


def test_ratio_with_interval_brackets_the_ratio_and_narrows_with_agreement():
    from nos_tf.benchmarks import search_efficiency

    median = search_efficiency._median_to_target
    ratio, low, high = search_efficiency.ratio_with_interval([10, 20, 30], [20, 40, 60], median)
    assert ratio == 0.5 and low <= 0.5 <= high and low < high
    # Every search alike: no other draw of seeds could change the ratio.
    assert search_efficiency.ratio_with_interval([7] * 5, [14] * 5, median) == (0.5, 0.5, 0.5)


def test_undefined_statistics_are_nan_without_warnings():
    """Short runs: random search never reaching the target, every reward at chance."""
    from nos_tf.benchmarks import search_efficiency, throughput

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, low, high = search_efficiency.ratio_with_interval(
            [10, 20], [None, None], search_efficiency._median_to_target)
        assert np.isnan(low) and np.isnan(high)
        assert np.isnan(throughput._spearman([0.1, 0.1, 0.1], [0.0, 0.2, 0.5]))
        assert np.isnan(throughput._spearman([0.0, 0.2, 0.5], [0.1, 0.1, 0.1]))
    assert throughput._spearman([1, 2, 3], [2, 4, 9]) == 1.0


def test_spearman_if_alike_ties_the_rules_that_learn_nothing_at_the_bottom():
    """Exact on the rules that learn, one value for the others: the ranks of 0 against
    chance among those are all the figure loses."""
    from nos_tf.benchmarks import throughput

    naive = [0.0, 0.1, 0.0, 0.09, 0.8, 0.7, 0.85]
    alike = [reward <= 0.2 for reward in naive]
    tied = [0.0, 0.0, 0.0, 0.0, 0.8, 0.7, 0.85]
    assert throughput._spearman_if_alike(naive, alike) == throughput._spearman(naive, tied)
    assert throughput._spearman_if_alike(naive, alike) < 1.0
    # Where the rules that learn nothing all score the same, nothing is lost.
    assert throughput._spearman_if_alike([0.0, 0.0, 0.8, 0.7], [True, True, False, False]) == 1.0


def test_an_unbounded_upper_bound_is_inf_without_warnings():
    """Half of PPO's searches never reached the target: in many draws of seeds its median
    is infinite, and so is the ratio's upper bound (numpy's interpolation made it NaN)."""
    from nos_tf.benchmarks import search_efficiency

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ratio, low, high = search_efficiency.ratio_with_interval(
            [None, None, 36, 40], [90, 29, 19, 30], search_efficiency._median_to_target)
    assert ratio == math.inf and high == math.inf
    assert 0 < low < math.inf


def test_throughput_scores_rules_both_ways_and_a_later_run_takes_the_rows_back(tmp_path):
    results = tmp_path / "rows.jsonl"
    args = ["--dataset=digits", "--train_examples=300", "--validation_examples=200",
            "--learning_rates=0.01,0.1", "--child_batch_size=25", "--epochs=3",
            "--num_rules=2", "--paper_rules=powersign,addsign", f"--results_file={results}"]
    # Two shards, as two processes would run them: rules 0 and 2 (PowerSign), then 1 and 3.
    first = run_benchmark("throughput", *args, "--num_shards=2", "--shard_index=0")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "2 rules (shard 0 of 2);" in first.stdout and "speed-up" in first.stdout
    rows = results.read_text().splitlines()
    assert len(rows) == 2 and "g * exp(sign(g) * sign(m))" in rows[-1]
    # Tagged with the code's revision too: rows of an older evaluator are measured again.
    from nos_tf.benchmarks import throughput
    assert all(json.loads(row)["protocol"].endswith(f" revision {throughput.REVISION}")
               for row in rows)
    powersign = first.stdout.split("g * exp(sign(g) * sign(m))")[0].splitlines()[-1].split()
    assert float(powersign[0]) > 0.5 and float(powersign[2]) > 0.5  # naive, evaluator
    second = run_benchmark("throughput", *args, "--num_shards=2", "--shard_index=1")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "(shard 1 of 2);" in second.stdout
    assert "(from --results_file)" not in second.stdout
    rows = [json.loads(row) for row in results.read_text().splitlines()]
    assert len(rows) == 4

    # The closing figures, from rows given known values: seconds large enough that the
    # setup (measured again, printed for wall clock only) hardly moves the CPU speed-up.
    figures = {"naive_reward": [0.9, 0.0, 0.15, 0.7], "reward": [0.8, 0.0, 0.6, 0.0],
               "status": ["ok", "rejected", "ok", "diverged"], "naive_wall": [1500.0] * 4,
               "wall": [250.0] * 4, "naive_cpu": [2000.0] * 4, "cpu": [200.0] * 4}
    for i, row in enumerate(rows):
        row.update({name: values[i] for name, values in figures.items()})
    # A row of another revision, after the current one of its rule, is not taken back.
    older = {**rows[0], "naive_reward": 0.05, "reward": 0.95, "protocol": rows[0][
        "protocol"].replace(f" revision {throughput.REVISION}", " revision 0")}
    results.write_text("".join(json.dumps(row) + "\n" for row in [*rows, older]))

    whole = run_benchmark("throughput", *args)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert "4 rules;" in whole.stdout and whole.stdout.count("(from --results_file)") == 4
    assert len(results.read_text().splitlines()) == 5  # nothing measured twice
    assert "1 rows of another protocol, flags or revision are not used" in whole.stderr
    setup = whole.stdout.split("setup: naive ")[1].split()
    naive_setup, evaluator_setup = float(setup[0]), float(setup[3])
    wall = whole.stdout.split("per rule, wall clock: naive ")[1].split()
    assert float(wall[0]) == pytest.approx((naive_setup + 6000) / 4, abs=0.02)
    assert float(wall[3]) == pytest.approx((evaluator_setup + 1000) / 4, abs=0.02)
    assert float(wall[7].rstrip("x")) == pytest.approx(
        (naive_setup + 6000) / (evaluator_setup + 1000), abs=0.06)
    cpu = whole.stdout.split("per rule, process CPU: naive ")[1].split()  # setup's unprinted
    assert 2000 <= float(cpu[0]) < 2010 and 200 <= float(cpu[3]) < 210
    assert 9.5 < float(cpu[7].rstrip("x")) <= 10.0
    from scipy import stats
    rho = stats.spearmanr(figures["naive_reward"], figures["reward"]).statistic
    assert f"Spearman correlation of the rewards: {rho:.3f} over 4 rules" in whole.stdout
    trained = [0, 2, 3]  # the rules not rejected, the diverged one too
    rho_trained = stats.spearmanr([figures["naive_reward"][i] for i in trained],
                                  [figures["reward"][i] for i in trained]).statistic
    assert f"Spearman over the 3 rules the evaluator trained: {rho_trained:.3f}" in whole.stdout
    # Rules 1 and 2 learn nothing (at most twice chance on digits' 10 classes).
    rho_alike = stats.spearmanr(figures["naive_reward"], [0.9, 0.0, 0.0, 0.7]).statistic
    assert (f"2 rules score at most 0.2 the naive way, 1 of them 0 (diverged or failed); an "
            f"evaluator exact on every other rule and scoring these alike would reach "
            f"Spearman {rho_alike:.3f}") in whole.stdout
    assert len({rho, rho_trained, rho_alike}) == 3
    disagreements = whole.stdout.split("largest disagreements")[1].splitlines()[1:]
    assert [[float(field) for field in line.split()[:2]] for line in disagreements] == [
        [0.7, 0.0], [0.15, 0.6], [0.9, 0.8], [0.0, 0.0]]


def test_throughput_results_file_keeps_only_rows_of_the_same_protocol(tmp_path):
    from nos_tf.benchmarks import throughput

    path = str(tmp_path / "rows.jsonl")
    row = throughput.RuleResult("g", 0.8, 10.0, 9.0, 0.79, 2.0, 1.5, "ok")
    throughput.ResultsFile(path, "protocol A").append(row)
    assert throughput.ResultsFile(path, "protocol A").earlier == {"g": row}
    assert throughput.ResultsFile(path, "protocol B").earlier == {}
    with open(path, "a") as file:  # a kill in the middle of writing a row
        file.write('{"protocol": "protocol A", "rule": "sign(g)", "naive_rew')
    assert throughput.ResultsFile(path, "protocol A").earlier == {"g": row}
    throughput.ResultsFile(path, "protocol A").append(row)
    assert len(open(path).read().splitlines()) == 2
    # A whole row without its newline (the file edited) is kept, not cut as a kill's.
    other = dataclasses.replace(row, rule="sign(g)")
    text = open(path).read() + json.dumps({"protocol": "protocol A",
                                           **dataclasses.asdict(other)})
    with open(path, "w") as file:
        file.write(text)
    assert throughput.ResultsFile(path, "protocol A").earlier == {"g": row, "sign(g)": other}
    assert open(path).read() == text + "\n"


# One row as ResultsFile.append writes it.
_ROW = json.dumps({"protocol": "p", "rule": "g", "naive_reward": 0.5, "naive_wall": 1.0,
                   "naive_cpu": 1.0, "reward": 0.5, "wall": 0.1, "cpu": 0.1, "status": "ok"})


@pytest.mark.parametrize("text, line", [
    ('{"a": 1}', 1),  # Another program's file; without a newline it looked cut short.
    ("line one\nline two, no newline", 1),
    ('{"protocol": "p", "rule": "g"}\n', 1),  # JSON with a protocol, but no result.
    (_ROW + '\nnotes', 2),
])
def test_a_results_file_of_something_else_is_refused_untouched(tmp_path, text, line):
    from nos_tf.benchmarks import throughput

    path = tmp_path / "precious.txt"
    path.write_text(text)
    with pytest.raises(app.UsageError, match=(
            rf"--results_file=.*precious.txt cannot be used: line {line} is not a row of "
            "this benchmark's results")):
        throughput.ResultsFile(str(path), "p")
    assert path.read_text() == text


def test_batch_norm_times_each_network_with_both_layers():
    process = run_benchmark("batch_norm", "--steps=1", "--rounds=1")
    assert process.returncode == 0, process.stderr[-3000:]
    rows = [line.split() for line in process.stdout.splitlines()
            if line.startswith(("proxy child", "WRN-16-2"))]
    assert len(rows) == 2
    for *_, keras_ms, fused_ms, speed_up in rows:
        assert float(keras_ms) > 0 and float(fused_ms) > 0
        assert abs(float(speed_up.rstrip("x")) - float(keras_ms) / float(fused_ms)) < 0.02


def test_random_operands_times_each_rule_both_ways():
    process = run_benchmark("random_operands", "--steps=1", "--rounds=1")
    assert process.returncode == 0, process.stderr[-3000:]
    rows = {line.rsplit(maxsplit=2)[0]: [float(x) for x in line.split()[-2:]]
            for line in process.stdout.splitlines() if line.endswith(tuple("0123456789"))
            and not line.startswith("One update")}
    assert set(rows) == {"g * exp(sign(g) * sign(m))", "drop(g, 0.3)", "drop(g, 0.3), auto_select",
                         "g + noise", "g + noise, auto_select"}
    powersign_ms = rows["g * exp(sign(g) * sign(m))"][0]
    for ms, ratio in rows.values():  # both printed rounded: to 0.01 ms and 0.01
        assert ms > 0 and ratio == pytest.approx(ms / powersign_ms, rel=0.05, abs=0.02)
    assert "drop(g, 0.3): auto_select takes " in process.stdout


def test_random_operands_contenders_draw_by_the_algorithm_they_are_named_after():
    """The auto_select contender is traced while that is the algorithm (it is read at
    tracing): under XLA it draws other numbers than Philox named."""
    import tensorflow as tf

    from nos_tf.benchmarks import random_operands

    def update(algorithm):
        variables = [tf.Variable(tf.zeros(1000))]
        random_operands.rule_step("noise", variables, [tf.ones(1000)], algorithm)()
        return variables[0].numpy()

    named = update("philox")
    np.testing.assert_array_equal(named, update("philox"))
    assert not np.allclose(named, update("auto_select"))


def test_searcher_hyperparameters_are_read_as_their_defaults_types():
    from absl import app, flags
    from absl.testing import flagsaver

    from nos_tf.benchmarks import search_efficiency

    def read(*items):
        with flagsaver.flagsaver():
            flags.FLAGS(["search_efficiency", *(f"--searcher_hyperparameter={i}" for i in items)])
            return search_efficiency._searcher_hyperparameters()

    assert read("normalize_advantages=false", "epochs=8", "entropy_floor=0") == {
        "normalize_advantages": False, "epochs": 8, "entropy_floor": 0.0}
    assert read("avoid_repeats=1")["avoid_repeats"] is True
    with pytest.raises(app.UsageError, match="none of the searchers .* takes 'entropy_flor'"):
        read("entropy_flor=0")  # was ignored: the run went on with the default
    with pytest.raises(app.UsageError, match="epochs takes an integer, not 'many'"):
        read("epochs=many")
    # Ignored, while the run's header said it was in effect.
    with flagsaver.flagsaver(), pytest.raises(
            app.UsageError, match=r"^--controller_learning_rate: none of the searchers "
                                  r"\['random', 'evolution'\] has a controller"):
        flags.FLAGS(["search_efficiency", "--searchers=random,evolution",
                     "--controller_learning_rate=0.1"])
        search_efficiency._searcher_hyperparameters()


@pytest.mark.parametrize("flag, problem", [
    ("--searchers=ppo,rnadom", "must name searchers of"),
    ("--functions=cube", "must name problems of"),
    ("--function_learning_rates=1e-3,fast", "must be positive finite numbers"),
    ("--function_learning_rates=inf", "must be positive finite numbers"),  # Adam scored 0.
    ("--batch_size=0", "0 is not a positive integer"),  # It looped forever.
    ("--function_decades=nan", "must be a positive finite number"),  # Every rule scored 1.
])
def test_search_efficiency_refuses_bad_flags_as_it_parses_them(flag, problem):
    from absl import flags
    from absl.testing import flagsaver

    from nos_tf.benchmarks import search_efficiency

    with flagsaver.flagsaver(), pytest.raises(flags.IllegalFlagValueError, match=problem):
        flags.FLAGS([search_efficiency.__name__, flag])


REFUSALS = [  # (benchmark, arguments, message)
    # A searcher refused its hyperparameters in a traceback, after the target was scored.
    ("search_efficiency", ["--searchers=random,ppo", "--controller_learning_rate=-1"],
     "error: the ppo searcher refuses --controller_learning_rate or "
     "--searcher_hyperparameter: learning_rate must be positive and finite, got -1.0."),
    ("throughput", ["--rule_seed=-1"], "-1 is not a non-negative integer"),
    # Data that is not there, or a flag only the search has, came as a traceback.
    ("throughput", ["--dataset=cifar10", "--data_dir={tmp_path}"],
     "error: dataset 'cifar10' is not in"),
    ("search_efficiency", ["--reward=proxy", "--dataset=cifar10", "--data_dir={tmp_path}"],
     "error: dataset 'cifar10' is not in"),
    ("search_efficiency", ["--reward=proxy", "--flagfile={smoke}", "--store=x"],
     "error: --store is not a flag of this program"),
    # app.UsageError printed the module's docstring and every flag (190 lines) above it.
    ("throughput", ["--num_shards=2", "--shard_index=5"],
     "error: --shard_index=5 must be below --num_shards=2."),
    ("throughput", ["--num_shards=2", "--shard_index=2"],
     "error: --shard_index=2 must be below --num_shards=2."),
    ("throughput", ["--num_rules=0", "--paper_rules=powersign", "--num_shards=2",
                    "--shard_index=1"], "Shard 1 of 2 is empty: the list has 1 rules."),
]


@pytest.fixture(scope="module")
def refused_benchmarks(tmp_path_factory):
    """Each benchmark of REFUSALS run with its arguments, after a small run's (so that it
    would end soon if it went on), the runs of a benchmark in one process
    (`binaries.run_each`): {(benchmark, arguments as a tuple): process}."""
    tmp_path = tmp_path_factory.mktemp("refusals")
    small = {"throughput": ["--num_rules=1", "--paper_rules="],
             "search_efficiency": ["--seeds=1", "--evaluations=2", "--batch_size=2",
                                   "--function_steps=10"]}
    processes = {}
    for benchmark, first_args in small.items():
        runs = [tuple(args) for name, args, _ in REFUSALS if name == benchmark]
        commands = [[*first_args, *(arg.format(tmp_path=tmp_path,
                                               smoke=binaries.FLAGS_DIR / "smoke.cfg")
                                    for arg in args)] for args in runs]
        for args, process in zip(runs, binaries.run_each(f"nos_tf.benchmarks.{benchmark}",
                                                         commands)):
            processes[benchmark, args] = process
    return processes


@pytest.mark.xdist_group("refused_benchmarks")
@pytest.mark.parametrize("benchmark, args, message", REFUSALS)
def test_a_benchmarks_bad_flags_and_missing_data_are_named_without_a_traceback(
        refused_benchmarks, benchmark, args, message):
    process = refused_benchmarks[benchmark, tuple(args)]
    assert process.returncode == 1, process.stderr[-2000:]
    lines = process.stderr.strip().splitlines()
    said = lines[-2] if lines[-1].startswith("Pass --helpshort") else lines[-1]  # absl's
    assert message in said  # Said last, in one line.
    assert "\nflags:\n" not in process.stderr and "Traceback" not in process.stderr
    assert "tuned Adam" not in process.stdout


def test_scaling_compares_the_rewards_of_every_round():
    # In a process of its own: scaling's flags share names with other benchmarks'.
    process = binaries.run_python(
        "from nos_tf.benchmarks import scaling\n"
        "both = scaling.Timing(1, 2.0, 3.0, ['a', 'b']).add(scaling.Timing(1, 4.0, None, ['a', 'c']))\n"
        "print(both.seconds, both.cpu_seconds, both.results)")
    assert process.returncode == 0, process.stderr[-2000:]
    # The second round's "c" was dropped: only the first round's rewards were compared.
    assert process.stdout == "6.0 None ['a', 'b', 'a', 'c']\n"


@pytest.mark.parametrize("flag, message", [
    ("--ray_address=localhost:1", "error: cannot reach the Ray cluster at 'localhost:1'"),  # Hung.
    ("--cpus_per_worker=64", "error: --cpus_per_worker=64: a worker needs 64 CPUs"),
])
def test_scaling_finds_a_cluster_it_cannot_use_before_any_round(flag, message):
    # Both came after the local round: the first hung in ray.init, the second traced back.
    process = run_benchmark("scaling", f"--flagfile={binaries.FLAGS_DIR / 'smoke.cfg'}",
                            "--num_rules=1", "--rounds=1", flag)
    assert process.returncode == 1, process.stderr[-2000:]
    assert process.stderr.strip().splitlines()[-1].startswith(message)
    assert "round 1" not in process.stdout and "Traceback" not in process.stderr


def test_scaling_without_ray_says_how_to_install_it():
    process = binaries.run_without("ray", "nos_tf.benchmarks.scaling", "--num_rules=1")
    assert process.returncode == 1, process.stderr[-2000:]
    assert process.stderr.splitlines()[-1].startswith(
        "error: the ray executor needs Ray: pip install")
    assert "Traceback" not in process.stderr


def test_a_results_file_says_how_many_rows_of_other_protocols_it_leaves(tmp_path, capsys):
    # They were measured again without a word, and appended beside the old ones.
    from nos_tf.benchmarks import throughput

    row = dict(rule="g", naive_reward=0.5, naive_wall=1.0, naive_cpu=1.0, reward=0.5,
               wall=0.1, cpu=0.1, status="ok")
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"protocol": protocol, **row}) + "\n"
                            for protocol in ("this", "that", "old revision")))
    results = throughput.ResultsFile(str(path), "this")
    assert list(results.earlier) == ["g"]
    assert "2 rows of another protocol, flags or revision are not used" in (
        capsys.readouterr().err)
