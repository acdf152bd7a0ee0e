"""The benchmarks run end to end at toy sizes (their figures come from full runs, not here)."""

import binaries


def run_benchmark(name, *args):
    return binaries.run(f"nos_tf.benchmarks.{name}", *args)


def test_search_efficiency_compares_ppo_with_random_search():
    process = run_benchmark("search_efficiency", "--seeds=2", "--first_seed=5",
                            "--evaluations=12", "--batch_size=6")
    assert process.returncode == 0, process.stderr[-3000:]
    out = process.stdout
    target = float(out.split("tuned Adam's reward (the target): ")[1].split()[0])
    assert 0.3 < target < 1.0  # Adam makes real progress on the problems.
    assert "12 evaluations x 2 seeds from 5," in out
    assert "\nppo  (" in out and "\nrandom  (" in out
    assert out.count("best reward after 12:") == 2  # one line per searcher
    assert out.count("evaluations to tuned Adam's reward: ") == 2
    assert "evaluations to tuned Adam, ppo / random: mean " in out
    assert "median " in out.split("evaluations to tuned Adam, ppo / random: ")[1]


def test_median_to_target_is_exact_under_censoring():
    from nos_tf.benchmarks import search_efficiency

    # Unreached searches (None) sort above every reached one, whatever the budget.
    assert search_efficiency._median_to_target([10, None, 30]) == 30
    assert search_efficiency._median_to_target([10, 20, None, 40]) == 30
    # Half or more never reached the target: the median is not known.
    assert search_efficiency._median_to_target([10, None]) == float("inf")
