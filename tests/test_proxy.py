"""nos_tf.proxy: the child network, the reward protocol and the evaluator's levers.

Everything trains on scikit-learn's 8×8 digits with a few hundred examples, so each
evaluation takes seconds.
"""

import dataclasses
import functools
import json
import pickle

import keras
import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from nos_tf import data, proxy, proxy_flags

POWERSIGN = "g * exp(sign(g) * sign(m))"
SMALL = proxy.ProxyConfig(
    dataset="digits", train_examples=400, validation_examples=300,
    learning_rates=(1e-3, 1e-2, 1e-1), epochs=3,
)


@pytest.fixture(scope="module")
def evaluator():
    return proxy.Evaluator(SMALL)


def test_good_rules_learn_and_bad_ones_do_not(evaluator):
    """The child separates optimizers: chance is 0.1 on 10 balanced classes."""
    unscreened = proxy.Evaluator(dataclasses.replace(SMALL, screen_rules=False))
    powersign = evaluator.evaluate(POWERSIGN)
    frozen = unscreened.evaluate("exp(g) * 0")  # Never moves the weights.
    uphill = unscreened.evaluate("-g")
    assert powersign.status == "ok" and powersign.reward > 0.8
    assert powersign.lr in SMALL.learning_rates
    assert set(powersign.lr_scores) == set(SMALL.learning_rates)
    assert powersign.lr_scores[powersign.lr] == max(powersign.lr_scores.values())
    assert frozen.reward < 0.25
    assert uphill.reward < 0.25


def test_screened_rules_are_rejected_without_training(evaluator):
    cases = [("-g", "descent"), ("exp(g) * 0", "constant"), ("g +* m", "fails to build")]
    for rule, reason in cases:
        result = evaluator.evaluate(rule)
        assert result.status == "rejected" and reason in result.reason
        assert result.reward == 0.0 and result.lr is None and result.lr_scores == {}


def test_equivalent_rule_comes_from_the_cache(evaluator):
    first = evaluator.evaluate(POWERSIGN)
    again = evaluator.evaluate("exp(sign(m) * sign(g)) * g")
    assert again.fingerprint == first.fingerprint
    assert (again.reward, again.lr, again.lr_scores) == (first.reward, first.lr, first.lr_scores)
    assert "cached" in again.reason and again.rule == "exp(sign(m) * sign(g)) * g"
    # A caller's changes to the answer's containers are not the cache's.
    scores, diverged = dict(first.lr_scores), list(first.diverged_lrs)
    again.lr_scores.clear()
    again.diverged_lrs.append(1.0)
    third = evaluator.evaluate(POWERSIGN)
    assert scores and (third.lr_scores, third.diverged_lrs) == (scores, diverged)


def test_same_rule_and_seed_give_the_same_reward_whatever_ran_before(evaluator):
    """A fresh evaluator and one that trained other rules first agree exactly."""
    adam_first = evaluator.evaluate_optimizer("Adam", keras.optimizers.Adam)
    fresh = proxy.Evaluator(SMALL)
    fresh.evaluate("(1 + sign(g) * sign(m)) * g")
    adam_again = fresh.evaluate_optimizer("Adam", keras.optimizers.Adam)
    assert adam_again.reward == adam_first.reward
    assert adam_again.lr_scores == adam_first.lr_scores


def test_plain_rule_matches_keras_sgd(evaluator):
    """`g` is SGD: the rule optimizer and Keras's SGD score alike at every rate."""
    rule = evaluator.evaluate("g")
    sgd = evaluator.evaluate_optimizer("SGD", keras.optimizers.SGD)
    assert rule.lr == sgd.lr
    for lr, score in sgd.lr_scores.items():
        assert rule.lr_scores[lr] == pytest.approx(score, abs=0.02)


def test_continuing_the_search_run_equals_training_afresh():
    """For a rule without decay operands the continued run repeats a fresh one exactly."""
    config = dataclasses.replace(SMALL, halving_rate=1)
    continued = proxy.Evaluator(config).evaluate_optimizer("Adam", keras.optimizers.Adam)
    afresh = proxy.Evaluator(dataclasses.replace(config, continue_best_run=False))
    fresh = afresh.evaluate_optimizer("Adam", keras.optimizers.Adam)
    assert continued.lr == fresh.lr
    assert continued.reward == pytest.approx(fresh.reward, abs=1e-9)


def test_exploding_loss_stops_the_run_with_reward_zero():
    config = dataclasses.replace(SMALL, learning_rates=(1e3, 1e6))
    result = proxy.Evaluator(config).evaluate_optimizer("SGD", keras.optimizers.SGD)
    assert result.status == "diverged" and result.reward == 0.0 and result.lr is None
    assert result.lr_scores == {1e3: 0.0, 1e6: 0.0}
    assert result.diverged_lrs == [1e3, 1e6]


def test_diverged_rates_score_zero_and_lose():
    config = dataclasses.replace(SMALL, learning_rates=(1e-2, 1e6), halving_rate=1)
    result = proxy.Evaluator(config).evaluate_optimizer("SGD", keras.optimizers.SGD)
    assert result.status == "ok" and result.lr == 1e-2
    assert result.lr_scores[1e6] == 0.0 < result.lr_scores[1e-2]
    assert result.diverged_lrs == [1e6]
    assert proxy.EvalResult.from_dict(result.to_dict()) == result


def test_a_rule_is_diverged_only_if_every_rate_diverges_however_halving_cut():
    """`g − 8w` blows its weights up at a rate that grows with the learning rate: 0.05 and
    0.1 lead after a third of the epoch, halving keeps them, and both explode before its
    end. 1e-3, which halving had set aside, never diverges; the paper's protocol (η = 1)
    chooses it, and so must halving, rather than calling the rule diverged."""
    config = proxy.ProxyConfig(
        dataset="digits", validation_examples=300, learning_rates=(1e-3, 0.05, 0.1),
        epochs=2, screen_rules=False)
    rule = "g - 2 * 2 * 2 * w"
    full = proxy.Evaluator(dataclasses.replace(config, halving_rate=1)).evaluate(rule)
    halved = proxy.Evaluator(dataclasses.replace(config, halving_rate=3)).evaluate(rule)
    assert full.status == "ok" and full.lr == 1e-3 and full.reward > 0.15
    assert full.lr_scores[0.05] == full.lr_scores[0.1] == 0.0  # Diverged.
    assert (halved.status, halved.lr, halved.reward) == (full.status, full.lr, full.reward)
    assert halved.lr_steps[1e-3] == full.lr_steps[1e-3]
    # The two led at the cut, then diverged: they score 0, not the cut's accuracy.
    assert halved.lr_scores[0.05] == halved.lr_scores[0.1] == 0.0
    assert halved.diverged_lrs == full.diverged_lrs == [0.05, 0.1]
    # The cut ranking on 7 of the 300 images: 1e-3 is chosen on all 300 all the same.
    cut_on_seven = proxy.Evaluator(dataclasses.replace(
        config, halving_rate=3, halving_validation_examples=7)).evaluate(rule)
    assert (cut_on_seven.status, cut_on_seven.lr) == (full.status, full.lr)
    assert cut_on_seven.reward == full.reward
    assert cut_on_seven.lr_scores[1e-3] == full.lr_scores[1e-3]  # On all 300 images.


def test_a_live_rate_that_scored_0_is_chosen_over_a_diverged_one(evaluator):
    """Accuracy 0 is a score (of a cut's small subset, or of a rule that learned the wrong
    classes); diverging is not one. With a rate left, the rule is not diverged, whatever
    the grid order of the tie."""
    outcomes = {0.1: (0.0, True), 0.01: (0.0, False)}  # lr: (score, diverged)

    class ScriptedTrainer:
        def train(self, run, until_step, validation_examples=None):
            run.steps = until_step
            run.score, run.diverged = outcomes[run.learning_rate]

    runs = [proxy._Run(lr, weights=None, optimizer_state=None) for lr in outcomes]
    assert evaluator._search(ScriptedTrainer(), runs, search_steps=4).learning_rate == 0.01


def test_rates_the_cut_set_aside_are_finished_when_its_survivors_diverge(evaluator):
    """An epoch of one step: the cut trains every rate its one step, so the rate it set
    aside has as many steps as the two it kept. Those two then diverge at the choice
    (their logits are not finite on images the cut's subset did not hold); the rate set
    aside must still be scored and chosen, not the rule called diverged."""
    cut_scores = {1e-3: 0.2, 1e-2: 0.5, 1e-1: 0.6}

    class ScriptedTrainer:
        def train(self, run, until_step, validation_examples=None):
            run.steps = until_step
            choosing = validation_examples is None
            run.diverged = choosing and run.learning_rate > 1e-3
            run.score = 0.0 if run.diverged else cut_scores[run.learning_rate]

    runs = [proxy._Run(lr, weights=None, optimizer_state=None) for lr in cut_scores]
    assert proxy.halving_schedule(3, evaluator.config.halving_rate, 1) == [(3, 1), (2, 1)]
    best = evaluator._search(ScriptedTrainer(), runs, search_steps=1)
    assert (best.learning_rate, best.diverged) == (1e-3, False)


def test_a_rule_that_diverges_in_the_final_run_is_diverged():
    """The lr search's epoch passes; the final run explodes at its first step after it:
    reward 0, status "diverged", the run stopped at that step."""
    evaluator = proxy.Evaluator(dataclasses.replace(SMALL, learning_rates=(0.1,)))
    child = evaluator._child
    search_steps = SMALL.lr_search_epochs * child.steps_per_epoch
    losses = []

    def exploded_after_the_search(loss):
        losses.append(loss)
        return len(losses) > search_steps

    child.exploded = exploded_after_the_search
    result = evaluator.evaluate_optimizer("SGD", keras.optimizers.SGD)
    assert (result.status, result.reward, result.reason) == (
        "diverged", 0.0, "diverged in the final run")
    assert len(losses) == search_steps + 1


def test_weights_that_blow_up_in_the_last_step_are_diverged_not_scored():
    """One step an epoch: that step's loss is the initial weights' (finite), and the step
    sends the weights to ±inf. Logits that are not finite mean diverged, not an accuracy
    of argmax over NaN (about chance)."""
    config = dataclasses.replace(SMALL, train_examples=100, learning_rates=(1e30,), epochs=1)
    result = proxy.Evaluator(config).evaluate_optimizer("SGD", keras.optimizers.SGD)
    assert (result.status, result.reward) == ("diverged", 0.0)
    assert result.diverged_lrs == [1e30] and result.lr_scores == {1e30: 0.0}


def test_the_proxy_seed_sets_the_batch_order_and_the_initial_weights():
    """Not only the split: seeds averaged by `evaluate --num_seeds` would otherwise share
    batches and weights, and their spread would read smaller than it is."""
    images = SMALL.load_data()

    def child(seed):
        network = proxy._ChildNetwork(images, dataclasses.replace(SMALL, seed=seed))
        _, labels = next(iter(network.batches))
        return labels.numpy().tolist(), network.initial_weights

    (labels, weights), (labels_again, weights_again), (other_labels, other_weights) = (
        child(0), child(0), child(1))
    assert labels == labels_again and labels != other_labels
    for a, b in zip(weights, weights_again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(weights, other_weights))


def test_wall_time_is_recorded(evaluator):
    assert evaluator.evaluate("-g").wall_time > 0  # Rejected by the screen.
    assert evaluator.evaluate_optimizer("SGD", keras.optimizers.SGD).wall_time > 0


def test_rules_that_learn_nothing_can_be_abandoned():
    config = dataclasses.replace(SMALL, screen_rules=False, abandon_below=0.3)
    result = proxy.Evaluator(config).evaluate("exp(g) * 0")
    assert result.status == "ok" and "abandoned" in result.reason
    # The best of the runs that had the whole lr-search epoch; halving pruned the others.
    budget = max(result.lr_steps.values())
    fully_trained = [s for lr, s in result.lr_scores.items() if result.lr_steps[lr] == budget]
    assert result.reward == result.lr_scores[result.lr] == max(fully_trained) < 0.3


def test_training_failure_becomes_an_error_result(evaluator):
    def broken(learning_rate):
        raise RuntimeError("no optimizer today")

    result = evaluator.evaluate_optimizer("broken", broken)
    assert result.status == "error" and "no optimizer today" in result.reason
    assert result.reward == 0.0


@pytest.mark.parametrize("continue_best_run", [True, False])
def test_decay_rules_get_the_run_length(monkeypatch, continue_best_run):
    """`ld`, `cd` and `rd` reach their end at the last step of the run the optimizer
    trains: the final run's, when it continues the search's optimizer."""
    config = dataclasses.replace(SMALL, continue_best_run=continue_best_run)
    decay_steps, rule_optimizer = [], proxy.RuleOptimizer

    def recording(*args, **kwargs):
        decay_steps.append(kwargs["decay_steps"])
        return rule_optimizer(*args, **kwargs)

    evaluator = proxy.Evaluator(config)
    monkeypatch.setattr(proxy, "RuleOptimizer", recording)
    result = evaluator.evaluate("ld * g")
    assert result.status == "ok" and result.reward > 0.5
    steps_per_epoch = evaluator._child.steps_per_epoch
    final = config.epochs * steps_per_epoch
    search = config.lr_search_epochs * steps_per_epoch
    assert decay_steps == ([final] if continue_best_run else [search, final])


def test_an_error_is_not_cached_but_scored_again():
    """An error may be passing (memory), so the same rule is trained when asked again;
    a cached error would score it, and every rule like it, 0 for the worker's life."""
    evaluator = proxy.Evaluator(SMALL)
    score, rules_scored = evaluator._score, []

    def failing_once(text, fingerprint, make_optimizer):
        rules_scored.append(text)
        if len(rules_scored) == 1:
            return proxy.EvalResult(text, fingerprint, 0.0, proxy.ERROR, reason="out of memory")
        return score(text, fingerprint, make_optimizer)

    evaluator._score = failing_once
    assert evaluator.evaluate(POWERSIGN).status == proxy.ERROR
    again = evaluator.evaluate(POWERSIGN)
    assert again.status == proxy.OK and again.reward > 0.8
    assert rules_scored == [POWERSIGN, POWERSIGN]


@pytest.mark.parametrize("num_classes", [2, 10])
def test_a_loss_has_exploded_past_the_factor_times_a_uniform_guess(num_classes):
    """Part of the protocol: a lower cut would call runs diverged that recover."""
    assert proxy.max_loss(SMALL, num_classes) == pytest.approx(
        SMALL.divergence_factor * np.log(num_classes))
    assert SMALL.divergence_factor == proxy.ProxyConfig().divergence_factor == 100.0


@pytest.mark.parametrize(
    "rates, eta, steps, expected",
    [
        (6, 3, 90, [(6, 30), (2, 90)]),
        (6, 2, 100, [(6, 25), (3, 50), (2, 100)]),
        (6, 1, 90, [(6, 90)]),
        (2, 3, 90, [(2, 90)]),
        (6, 3, 2, [(6, 1), (2, 2)]),
        (9, 3, 90, [(9, 30), (3, 90)]),
        # The best ⌈n/η^k⌉ go on: 7/3 keeps 3, 10/9 keeps 2.
        (7, 3, 90, [(7, 30), (3, 90)]),
        (10, 3, 90, [(10, 10), (4, 30), (2, 90)]),
        # η ≥ n still halves: one cut, to the best 2 (it trained every rate fully).
        (3, 3, 90, [(3, 30), (2, 90)]),
        (4, 4, 8, [(4, 2), (2, 8)]),
        (6, 10, 100, [(6, 10), (2, 100)]),
    ],
)
def test_halving_schedule_ends_with_a_choice_at_the_full_budget(rates, eta, steps, expected):
    assert proxy.halving_schedule(rates, eta, steps) == expected


def test_halving_chooses_what_full_training_chooses_here():
    full = proxy.Evaluator(dataclasses.replace(SMALL, halving_rate=1)).evaluate(POWERSIGN)
    halved = proxy.Evaluator(dataclasses.replace(SMALL, halving_rate=3)).evaluate(POWERSIGN)
    assert halved.lr == full.lr
    assert halved.lr_scores[halved.lr] == full.lr_scores[full.lr]


def test_halving_cuts_rank_on_part_of_the_validation_set_and_the_choice_on_all():
    """The cut reads the first `halving_validation_examples` (here 7) of the 300
    validation images; the rates that reach the last rung are scored on all 300 again,
    so the choice and the reward are the whole set's. An accuracy on 7 images is a
    multiple of 1/7, one on 300 is not (unless 0 or 1)."""
    halving = dataclasses.replace(SMALL, halving_rate=3)
    part = proxy.Evaluator(
        dataclasses.replace(halving, halving_validation_examples=7)).evaluate(POWERSIGN)
    whole = proxy.Evaluator(
        dataclasses.replace(halving, halving_validation_examples=None)).evaluate(POWERSIGN)
    budget = max(part.lr_steps.values())
    cut = [lr for lr, steps in part.lr_steps.items() if steps < budget]
    kept = [lr for lr, steps in part.lr_steps.items() if steps == budget]
    assert len(cut) == 1 and len(kept) == 2
    assert all(_on_seven(part.lr_scores[lr]) for lr in cut)
    assert not any(_on_seven(part.lr_scores[lr]) for lr in kept)
    assert not any(_on_seven(score) for score in whole.lr_scores.values())
    assert (part.lr, part.reward) == (whole.lr, whole.reward)


def test_a_run_the_cut_scored_on_part_of_the_set_is_scored_again_to_be_chosen():
    """An epoch of one step: the cut's budget is already the whole lr-search budget, so
    the last rung trains nothing more, but it must still score its runs on every
    validation image before choosing."""
    config = dataclasses.replace(
        SMALL, train_examples=100, halving_rate=3, halving_validation_examples=7)
    assert proxy.halving_schedule(3, 3, 1) == [(3, 1), (2, 1)]
    result = proxy.Evaluator(config).evaluate(POWERSIGN)
    assert sorted(result.lr_steps.values()) == [1, 1, 1]
    assert [_on_seven(score) for score in result.lr_scores.values()].count(False) == 2


def _on_seven(score: float) -> bool:
    """Whether an accuracy could be one on 7 images (a multiple of 1/7)."""
    return abs(score * 7 - round(score * 7)) < 1e-9


def test_a_protocol_recorded_before_the_cuts_subset_existed_is_the_whole_sets():
    """Stores recorded protocols without `halving_validation_examples`; their runs ranked
    the cuts on the whole validation set, so that is the protocol they still match (and
    resume with, given --halving_validation_examples=0). So does a subset no cut reads."""
    recorded_before = {  # SMALL's protocol as trial stores recorded it before the field.
        "dataset": "digits", "data_dir": None, "train_examples": 400,
        "validation_examples": 300, "batch_size": 100, "learning_rates": [1e-3, 1e-2, 1e-1],
        "lr_search_epochs": 1, "epochs": 3, "seed": 0, "screen_rules": True,
        "halving_rate": 3, "continue_best_run": True, "divergence_factor": 100.0,
        "abandon_below": 0.0}
    unread = [
        {"halving_validation_examples": None},
        {"halving_validation_examples": 300},  # The whole set (SMALL's default, 1000, too).
        {"halving_validation_examples": 7, "halving_rate": 1},  # No cut.
    ]
    with_xla = dataclasses.replace(SMALL, xla_updates=True)  # As every update was then.
    for change in unread:
        protocol = dataclasses.replace(with_xla, **change).protocol()
        others = {key: value for key, value in change.items()
                  if key != "halving_validation_examples"}
        assert protocol == {**recorded_before, **others}
    read = dataclasses.replace(with_xla, halving_validation_examples=7).protocol()
    assert read == {**recorded_before, "halving_validation_examples": 7}
    assert SMALL.protocol() == {**recorded_before, "xla_updates": False}


@pytest.mark.parametrize("xla", [False, True])
def test_rules_train_with_xla_only_when_the_protocol_says(monkeypatch, xla):
    """A compiled update stays in memory for the life of the process (~4 MiB a rule)."""
    made = []
    original = proxy.RuleOptimizer

    def recording(*args, **kwargs):
        made.append(kwargs["jit_compile"])
        return original(*args, **kwargs)

    monkeypatch.setattr(proxy, "RuleOptimizer", recording)
    config = dataclasses.replace(SMALL, learning_rates=(0.1,), epochs=1, xla_updates=xla)
    assert proxy.Evaluator(config).evaluate("g").status == "ok"
    assert made == [xla]


def test_every_protocol_flag_sets_its_field():
    """paper.cfg's --nocontinue_best_run and --halving_rate=1 ignored would train otherwise
    than the paper, unsaid."""
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["evaluate", "--dataset=digits", "--train_examples=400",
                     "--validation_examples=300", "--child_batch_size=50",
                     "--learning_rates=0.01,0.1", "--lr_search_epochs=2", "--epochs=4",
                     "--proxy_seed=7", "--noscreen_rules", "--halving_rate=2",
                     "--halving_validation_examples=20", "--nocontinue_best_run",
                     "--xla_updates", "--divergence_factor=50", "--abandon_below=0.3"])
        config = proxy_flags.config_from_flags()
    assert config == proxy.ProxyConfig(
        dataset="digits", train_examples=400, validation_examples=300, batch_size=50,
        learning_rates=(0.01, 0.1), lr_search_epochs=2, epochs=4, seed=7,
        screen_rules=False, halving_rate=2, halving_validation_examples=20,
        continue_best_run=False, xla_updates=True, divergence_factor=50.0,
        abandon_below=0.3)


def test_the_flag_gives_the_cuts_subset_and_0_the_whole_set():
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["evaluate"])
        assert proxy_flags.config_from_flags().halving_validation_examples == 1000
        flags.FLAGS(["evaluate", "--halving_validation_examples=0"])
        assert proxy_flags.config_from_flags().halving_validation_examples is None


def test_an_empty_data_dir_flag_is_the_protocol_without_one():
    """`--data_dir=` clears a flagfile's: the same protocol as no flag (a store's runs are
    resumed and its rewards shared by protocol)."""
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["evaluate"])
        without = proxy_flags.config_from_flags().protocol()
        flags.FLAGS(["evaluate", "--data_dir="])
        assert proxy_flags.config_from_flags().protocol() == without


def test_the_protocol_names_a_tfds_source_and_workers_keep_to_the_flags_source(
        tmp_path, monkeypatch):
    """The validation split depends on the order of the source's examples: the protocol
    names TFDS's (stores made before the field read Debian's IDX files, and still match),
    and an evaluator whose machine lacks the flags' source refuses to start."""
    assert dataclasses.replace(SMALL, data_source="idx").protocol() == SMALL.protocol()
    assert dataclasses.replace(SMALL, data_source="tfds").protocol() == {
        **SMALL.protocol(), "data_source": "tfds"}
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "no-debian"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras"))
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["evaluate", "--dataset=fashion_mnist"])
        config = proxy_flags.config_from_flags()
        assert config.data_source == "tfds"
        flags.FLAGS(["evaluate", "--dataset=digits"])
        assert proxy_flags.config_from_flags().data_source is None
    with pytest.raises(data.DataUnavailableError, match="to be read from its IDX files"):
        proxy.Evaluator(dataclasses.replace(config, data_source="idx"))


def test_scores_of_pruned_rates_say_they_had_less_training():
    """Halving scores a pruned rate after part of the lr-search epoch: `lr_steps` says how
    much, so its accuracy is not read as a full lr-search score (here 3 rates, η = 2: all
    three train 2 of the epoch's 4 steps, the best two all 4)."""
    halved = proxy.Evaluator(dataclasses.replace(SMALL, halving_rate=2)).evaluate(POWERSIGN)
    assert sorted(halved.lr_steps.values()) == [2, 4, 4]
    assert set(halved.lr_steps) == set(halved.lr_scores)
    assert halved.lr_steps[halved.lr] == 4  # Before the final run, like its score.
    full = proxy.Evaluator(dataclasses.replace(SMALL, halving_rate=1)).evaluate(POWERSIGN)
    assert full.lr_steps == {lr: 4 for lr in SMALL.learning_rates}


def test_result_round_trips_through_json():
    result = proxy.EvalResult(
        rule=POWERSIGN, fingerprint="abc", reward=0.9, status="ok", lr=0.01,
        lr_scores={0.001: 0.5, 0.01: 0.9}, wall_time=1.5, reason="", worker="w",
        lr_steps={0.001: 2, 0.01: 4},
    )
    assert proxy.EvalResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_workers_can_build_an_evaluator_from_a_pickled_factory():
    factory = pickle.loads(pickle.dumps(functools.partial(proxy.Evaluator, SMALL)))
    assert factory().config == SMALL


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"learning_rates": (0.1, -1.0)}, "learning_rates"),
        ({"learning_rates": ()}, "learning_rates must name at least one rate"),
        ({"learning_rates": (0.1, float("inf"))}, "positive and finite"),
        # A copy's run was recorded under the rate and stood for the chosen one.
        ({"learning_rates": (0.1, 0.1, 1e-1)}, "learning_rates must differ"),
        ({"seed": 2**31}, r"seed must be in \[0, 2\*\*31\)"),
        ({"seed": -1}, "seed must be in"),
        ({"divergence_factor": float("inf")}, "divergence_factor must exceed 1 and be finite"),
        ({"lr_search_epochs": 6}, "lr_search_epochs"),
        ({"halving_rate": 0}, "halving_rate"),
        ({"halving_validation_examples": 0}, "halving_validation_examples"),
    ],
)
def test_inconsistent_config_is_named(change, problem):
    with pytest.raises(ValueError, match=problem):
        dataclasses.replace(SMALL, **change)


def test_child_network_is_the_papers():
    model = proxy.build_child_network((8, 8, 1), 10, seed=3)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [(c.filters, c.kernel_size) for c in convs] == [(32, (3, 3))] * 2
    assert len(norms) == 2 and model.output_shape == (None, 10)
    same_seed = proxy.build_child_network((8, 8, 1), 10, seed=3)
    for a, b in zip(model.get_weights(), same_seed.get_weights()):
        np.testing.assert_array_equal(a, b)
