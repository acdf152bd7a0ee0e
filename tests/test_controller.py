"""Searchers: valid proposals, determinism, exact checkpoints, and that PPO learns."""

import dataclasses
import io
import json

import numpy as np
import pytest

from nos_tf import controller
from nos_tf.rules import Rule, TokenSpace

SEARCHERS = ["ppo", "reinforce", "random", "evolution"]
# Small enough that evolution leaves its random initial population within a few batches.
SMALL = {"evolution": {"population_size": 12, "tournament_size": 4}}


def make(name, space, seed=0, **hyperparameters):
    return controller.make_searcher(name, space, seed, **{**SMALL.get(name, {}), **hyperparameters})


def uses_sign_m(rule):
    """A cheap reward that depends on the rule only: 1 when it reads sign(m), else 0."""
    return 1.0 if "sign(m)" in str(rule) else 0.0


def run(searcher, batches, batch_size=8, reward=uses_sign_m):
    """Asks and tells `batches` batches; returns the proposals and the mean reward per batch."""
    proposals, means = [], []
    for _ in range(batches):
        batch = searcher.ask(batch_size)
        rewards = [reward(p.rule) for p in batch]
        searcher.tell(batch, rewards)
        proposals += batch
        means.append(np.mean(rewards))
    return proposals, means


def sampled_entropy(searcher, count=64):
    """Mean entropy (nats) of the policy's token choices over `count` rules it proposes."""
    tokens = np.array([p.tokens for p in searcher.ask(count)], np.int32)
    return float(np.mean(searcher.policy(tokens)[1]))


@pytest.fixture(scope="module")
def space():
    return TokenSpace(num_units=3)


@pytest.mark.parametrize("name", SEARCHERS)
def test_proposals_are_valid_tokens_that_decode_to_their_rule(name, space):
    searcher = make(name, space)
    proposals, _ = run(searcher, batches=3, batch_size=30)  # evolution mutates in batch 2 on
    for proposal in proposals:
        assert len(proposal.tokens) == len(space.sizes)
        for position, token in enumerate(proposal.tokens):
            # Unit 2's operands have 2 masked choices (references to units 2 and 3 that do
            # not exist before it); a policy that ignored the mask would pick them often.
            assert space.mask(position)[token], (name, position, proposal.tokens)
        assert isinstance(proposal.rule, Rule)
        assert proposal.rule == space.decode(proposal.tokens)


def test_policy_log_prob_of_a_proposal_is_its_sampling_probability(space):
    searcher = make("ppo", space)
    proposals = searcher.ask(16)
    log_probs, entropy = searcher.policy(np.array([p.tokens for p in proposals], np.int32))
    np.testing.assert_allclose(log_probs.numpy(), [p.log_prob for p in proposals], atol=1e-4)
    assert np.all(np.array([p.log_prob for p in proposals]) < 0)
    # Near-uniform at initialization: entropy close to the sum of log(number of valid tokens).
    uniform_entropy = sum(np.log(space.mask(p).sum()) for p in range(len(space.sizes)))
    assert np.all(entropy.numpy() > 0.95 * uniform_entropy)


def test_policy_is_the_papers_lstm(space):
    searcher = make("ppo", space)
    assert searcher.policy.cell.units == 150
    for weights in searcher.policy.get_weights():
        assert np.all(np.abs(weights) <= 0.08)
        assert np.ptp(weights) > 0.05  # initialized, and not all to one value
    # Small weights: the untrained policy is close to uniform over the valid tokens.
    entropy = sampled_entropy(searcher)
    assert 0.95 * searcher.policy.uniform_entropy < entropy <= searcher.policy.uniform_entropy


@pytest.mark.parametrize("name", SEARCHERS)
def test_same_seed_same_search_other_seed_other_search(name, space):
    first, _ = run(make(name, space, seed=3), batches=3)
    again, _ = run(make(name, space, seed=3), batches=3)
    other, _ = run(make(name, space, seed=4), batches=3)
    assert [p.tokens for p in first] == [p.tokens for p in again]
    assert [p.tokens for p in first] != [p.tokens for p in other]


@pytest.mark.parametrize("name", SEARCHERS)
def test_restored_state_continues_the_search_exactly(name, space):
    searcher = make(name, space, seed=1)
    run(searcher, batches=3)  # moves the policy, optimizer, baseline, population and RNG
    restored = make(name, space, seed=2)
    restored.set_state(searcher.get_state())
    for _ in range(2):  # the next batches and the update in between must match
        batch, batch_restored = searcher.ask(8), restored.ask(8)
        assert [p.tokens for p in batch] == [p.tokens for p in batch_restored]
        np.testing.assert_array_equal([p.log_prob for p in batch],
                                      [p.log_prob for p in batch_restored])
        rewards = [uses_sign_m(p.rule) for p in batch]
        assert searcher.tell(batch, rewards) == restored.tell(batch_restored, rewards)
    assert searcher.get_state() == restored.get_state()


def test_state_of_another_configuration_is_refused(space):
    with pytest.raises(ValueError, match="searcher: stored 'random', now 'evolution'"):
        make("evolution", space).set_state(make("random", space).get_state())
    with pytest.raises(ValueError, match="token_sizes"):
        make("ppo", space).set_state(make("ppo", TokenSpace(num_units=2)).get_state())
    with pytest.raises(ValueError, match="learning_rate"):
        make("ppo", space).set_state(make("ppo", space, learning_rate=0.1).get_state())
    with pytest.raises(ValueError, match="Not a searcher state"):
        make("random", space).set_state(b"not a state")


def test_bad_arguments_are_named(space):
    with pytest.raises(ValueError, match="Unknown searcher 'ga'.*evolution"):
        controller.make_searcher("ga", space)
    with pytest.raises(ValueError, match=r"no hyperparameters \['epochs'\]"):
        controller.make_searcher("random", space, epochs=3)
    with pytest.raises(ValueError, match="tournament_size"):
        controller.make_searcher("evolution", space, population_size=5, tournament_size=6)
    with pytest.raises(ValueError, match=r"entropy_floor must be in \[0, 1\), got 1.0"):
        controller.make_searcher("ppo", space, entropy_floor=1.0)
    with pytest.raises(ValueError, match="clip_epsilon > 0, got 4 and nan"):
        controller.make_searcher("ppo", space, clip_epsilon=float("nan"))
    for name, value, message in [
            ("learning_rate", -5e-3, "learning_rate must be positive and finite, got -0.005"),
            ("learning_rate", float("nan"), "learning_rate must be positive and finite"),
            ("entropy_weight", -1.0, "entropy_weight must be at least 0 and finite, got -1.0"),
            ("init_range", 0.0, "init_range must be positive"),
            ("lstm_units", 0, "lstm_units must be at least 1, got 0")]:
        with pytest.raises(ValueError, match=message):
            controller.make_searcher("reinforce", space, **{name: value})
    searcher = make("ppo", space)
    batch = searcher.ask(2)
    with pytest.raises(ValueError, match="2 proposals but 1 rewards"):
        searcher.tell(batch, [0.5])
    with pytest.raises(ValueError, match="non-finite rewards.*reward 0"):
        searcher.tell(batch, [0.5, float("nan")])
    with pytest.raises(ValueError, match="proposals its policy sampled"):
        searcher.tell(make("random", space).ask(1), [0.5])


def test_searcher_hyperparameters_are_keyword_defaults():
    ppo = controller.searcher_hyperparameters("ppo")
    assert ppo["lstm_units"] == 150 and ppo["entropy_weight"] == 0.0015
    assert ppo["clip_epsilon"] == 0.2 and ppo["epochs"] > 1
    assert "clip_epsilon" not in controller.searcher_hyperparameters("reinforce")
    assert controller.searcher_hyperparameters("random") == {}


@pytest.mark.parametrize("name", ["ppo", "reinforce", "evolution"])
def test_searcher_learns_a_reward_that_random_search_does_not(name):
    """Reward 1 for rules that read sign(m): random search keeps its base rate (about 1 in 10
    here); a searcher that learns, with its default hyperparameters, makes most of its last
    proposals read sign(m)."""
    space = TokenSpace(num_units=1)
    _, random_means = run(make("random", space, seed=0), batches=20, batch_size=16)
    _, means = run(make(name, space, seed=0), batches=20, batch_size=16)
    random_rate, late_rate = np.mean(random_means), np.mean(means[-5:])
    assert random_rate < 0.25
    assert late_rate > 0.6 > np.mean(means[:5]), (random_rate, means)


@pytest.mark.parametrize("normalize, baseline_matters", [(True, False), (False, True)])
def test_the_moving_average_baseline_steers_learning_only_without_standardizing(
        space, normalize, baseline_matters):
    """Standardizing within the batch subtracts the batch mean, which cancels any
    baseline; the paper's raw advantages are reward minus the moving average."""
    weights = []
    for baseline in (0.0, 0.7):
        searcher = make("ppo", space, normalize_advantages=normalize)
        searcher.baseline = baseline
        batch = searcher.ask(8)
        searcher.tell(batch, [uses_sign_m(p.rule) + 0.1 * i for i, p in enumerate(batch)])
        weights.append(searcher.policy.get_weights())
    same = all(np.allclose(a, b, atol=1e-7) for a, b in zip(*weights))
    assert same != baseline_matters


def test_the_baseline_starts_at_the_first_batchs_mean_and_averages_rewards_in_order(space):
    """The advantages of a batch are its rewards minus the baseline of the batches before
    it; the baseline then takes in each reward in turn at `baseline_decay`."""
    searcher = make("ppo", space, baseline_decay=0.9, normalize_advantages=False)
    metrics = searcher.tell(searcher.ask(2), [1.0, 0.0])
    after_first = 0.9 * (0.9 * 0.5 + 0.1 * 1.0) + 0.1 * 0.0  # It started at their mean, 0.5.
    assert metrics["baseline"] == pytest.approx(after_first)
    assert metrics["mean_abs_raw_advantage"] == pytest.approx(0.5)
    metrics = searcher.tell(searcher.ask(2), [0.9, 0.9])
    assert metrics["mean_abs_raw_advantage"] == pytest.approx(0.9 - after_first)
    assert metrics["baseline"] == pytest.approx(0.9 * (0.9 * after_first + 0.1 * 0.9) + 0.1 * 0.9)


@pytest.mark.parametrize("name", ["ppo", "reinforce"])
def test_a_batch_of_one_learns_from_its_reward(name, space):
    """One reward has no spread to standardize by; standardized, its advantage was 0, and
    a good rule and a bad one moved the policy alike (--batch_size=1)."""
    log_probs = []
    for reward in (0.0, 1.0):
        searcher = make(name, space)
        searcher.baseline = 0.5
        [proposal] = searcher.ask(1)
        searcher.tell([proposal], [reward])
        tokens = np.array([proposal.tokens], np.int32)
        log_probs.append(float(searcher.policy(tokens)[0][0]))
    assert log_probs[1] > log_probs[0] + 0.1


def test_ppo_clips_around_the_policy_before_the_update_not_the_one_that_sampled(space):
    """Ray workers train a batch while the next is sampled, so a batch is told after an
    update it was sampled before. Clipping the ratio to the sampling policy, as plain PPO
    does, left most of such a batch without gradient from the first epoch (ratios 0.6-2
    after one update); its rules' Adam learnt the toy reward far less (mean reward 0.6
    against 0.97 over seeds 0-2, 12 workers). Decoupled PPO (Hilton et al. 2021) clips
    around the policy at the start of the update and weights each sample by how much
    likelier it is there than when sampled. Here every proposal is made e^0.5 times less
    likely when sampled than it is now: that weights the whole objective alike, which
    changes nothing for Adam (without the entropy terms, which are not weighted, and
    Adam's epsilon, which tiny gradients feel), whereas ratios of e^0.5 = 1.65 were all
    clipped. (The weights differed by up to 0.036 so, and now by 1e-4.)"""
    weights = []
    for shift in (0.0, 0.5):
        searcher = make("ppo", space, entropy_weight=0.0, entropy_floor=0.0)
        searcher.optimizer.epsilon = 1e-30
        batch = [dataclasses.replace(p, log_prob=p.log_prob - shift) for p in searcher.ask(8)]
        searcher.tell(batch, [uses_sign_m(p.rule) + 0.1 * i for i, p in enumerate(batch)])
        weights.append(searcher.policy.get_weights())
    assert all(np.allclose(a, b, atol=1e-3) for a, b in zip(*weights))
    assert not all(np.allclose(a, b, atol=1e-3) for a, b in zip(weights[0], make(
        "ppo", space).policy.get_weights()))  # The update did move the policy.


def test_ppo_weights_each_sample_by_its_probability_now_over_when_sampled(space):
    """Decoupled PPO's objective, sample by sample: w * min(r * A, clip(r) * A), w the
    probability before the update over the sampling one, r the probability now over the
    one before the update."""
    searcher = make("ppo", space, entropy_weight=0.0, entropy_floor=0.0)
    shifts = np.array([0.0, 0.3, -0.2, 0.5, -0.4, 0.1], np.float32)
    batch = [dataclasses.replace(p, log_prob=p.log_prob - shift)
             for p, shift in zip(searcher.ask(len(shifts)), shifts)]
    tokens = np.array([p.tokens for p in batch], np.int32)
    proximal, weights = searcher.behaviour_weights(
        tokens, np.array([p.log_prob for p in batch], np.float32))
    np.testing.assert_allclose(weights, np.exp(shifts), rtol=1e-4)
    run(searcher, 2)  # The policy moves on from the proximal one.
    advantages = np.array([1.0, -1.0, 0.5, -0.5, 2.0, -2.0], np.float32)
    loss, _, ratio = searcher.loss(tokens, proximal, weights, advantages)
    now, _ = searcher.policy(tokens)
    r = np.exp(now.numpy() - proximal.numpy())
    np.testing.assert_allclose(ratio, r, rtol=1e-5)
    assert np.abs(r - 1).max() > 0.2  # Some samples past the clip.
    expected = -np.mean(weights.numpy() * np.minimum(
        r * advantages, np.clip(r, 0.8, 1.2) * advantages))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_ppo_loss_is_the_clipped_surrogate_on_both_sides_of_the_clip(space):
    """L^CLIP (Schulman et al. 2017, eq. 7) per sample, min(r A, clip(r, 1 - ε, 1 + ε) A),
    for a ratio below, inside and above the clip, each with a positive and a negative
    advantage (the test above need not have r > 1 + ε with A > 0)."""
    searcher = make("ppo", space, entropy_weight=0.0, entropy_floor=0.0, clip_epsilon=0.2)
    tokens = np.array([p.tokens for p in searcher.ask(8)], np.int32)
    now, _ = searcher.policy(tokens)
    ratio = np.array([0.5, 0.5, 0.9, 0.9, 1.1, 1.1, 1.5, 1.5], np.float32)
    advantages = np.array([1, -1] * 4, np.float32)
    loss, _, got_ratio = searcher.loss(tokens, now - np.log(ratio), np.ones(8, np.float32),
                                       advantages)
    np.testing.assert_allclose(got_ratio, ratio, rtol=1e-4)
    per_sample = [0.5, -0.8, 0.9, -0.9, 1.1, -1.1, 1.2, -1.5]
    assert float(loss) == pytest.approx(-np.mean(per_sample), abs=1e-4)


def test_the_entropy_bonus_raises_the_entropy(space):
    """With every reward alike (no advantage to follow), the loss is -entropy_weight · H
    and an update only raises the entropy of the batch's token choices."""
    searcher = make("ppo", space, entropy_weight=0.1, entropy_floor=0.0)
    batch = searcher.ask(8)
    tokens = np.array([p.tokens for p in batch], np.int32)
    log_probs, entropy = searcher.policy(tokens)
    loss, _, _ = searcher.loss(tokens, log_probs, np.ones(8, np.float32), np.zeros(8, np.float32))
    assert float(loss) == pytest.approx(-0.1 * float(np.mean(entropy)), rel=1e-4)
    searcher.tell(batch, [0.5] * 8)
    assert float(np.mean(searcher.policy(tokens)[1])) > float(np.mean(entropy)) + 1e-3


def test_policy_gradient_defaults_are_the_documented_ones():
    """What the class docstrings measured the searches at; a searcher's hyperparameters
    are saved in its checkpoints, and a resume refuses other ones."""
    ppo = controller.searcher_hyperparameters("ppo")
    assert (ppo["learning_rate"], ppo["epochs"], ppo["target_kl"]) == (5e-3, 4, None)
    assert (ppo["baseline_decay"], ppo["normalize_advantages"]) == (0.95, True)
    assert (ppo["entropy_floor"], ppo["avoid_repeats"]) == (0.5, False)
    assert controller.searcher_hyperparameters("reinforce")["learning_rate"] == 2e-2


@pytest.mark.parametrize("name", ["ppo", "reinforce"])
def test_a_policy_that_avoids_repeats_proposes_each_rule_once_across_a_resume(name):
    """A peaked policy (large initial weights) repeats itself; with avoid_repeats it
    proposes each rule once, while fresh ones are easy to find: not again after it was
    told, nor while it is still training (a batch asked before the last is told, as the
    driver does), and a restored searcher remembers both."""
    space = TokenSpace(num_units=1)

    def texts(proposals):
        return [str(proposal.rule) for proposal in proposals]

    def tell(searcher, batch):
        searcher.tell(batch, [uses_sign_m(proposal.rule) for proposal in batch])

    repeating, _ = run(make(name, space, init_range=2.0, avoid_repeats=False), batches=4)
    assert len(set(texts(repeating))) < len(repeating)
    searcher = make(name, space, init_range=2.0, avoid_repeats=True)
    fresh, _ = run(searcher, batches=3)
    in_flight = searcher.ask(8)
    ahead = searcher.ask(8)  # Asked while the batch before it trains.
    tell(searcher, in_flight)
    restored = make(name, space, init_range=2.0, avoid_repeats=True)
    restored.set_state(searcher.get_state())  # `ahead` is still training.
    after_the_resume = restored.ask(8)
    tell(restored, ahead)
    tell(restored, after_the_resume)
    fresh += in_flight + ahead + after_the_resume + restored.ask(8)
    assert len(set(texts(fresh))) == len(fresh) == 56


@pytest.mark.parametrize("name", ["ppo", "reinforce"])
def test_an_entropy_floor_keeps_a_learning_policy_from_collapsing(name):
    """Rewarded for reading sign(m), the policy learns it either way; without a floor it
    also narrows its other choices (entropy well below half the uniform policy's), with
    `entropy_floor=0.5` it keeps at least half."""
    space = TokenSpace(num_units=1)
    entropies = {}
    for floor in (0.0, 0.5):
        searcher = make(name, space, entropy_floor=floor)
        _, means = run(searcher, batches=30, batch_size=16)
        assert np.mean(means[-5:]) > 0.9, (floor, means)
        entropies[floor] = sampled_entropy(searcher) / searcher.policy.uniform_entropy
    assert entropies[0.0] < 0.45 and entropies[0.5] >= 0.5, entropies


def test_a_state_saved_before_a_hyperparameter_existed_restores_as_it_was_saved(space):
    """Older code had no entropy floor, avoid_repeats or target_kl: its states resume with the
    floor off (not today's default) and are refused for a searcher that would change it."""
    searcher = make("ppo", space, seed=1, entropy_floor=0.0)
    run(searcher, batches=2)
    with np.load(io.BytesIO(searcher.get_state())) as archive:
        arrays = {key: archive[key] for key in archive.files}
    meta = json.loads(arrays.pop("__meta__").tobytes())
    for key in ("avoid_repeats", "entropy_floor", "target_kl"):
        del meta["config"][key]
    del meta["told_rules"], meta["asked_rules"]
    old_state = io.BytesIO()
    np.savez(old_state, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    restored = make("ppo", space, seed=2, entropy_floor=0.0)
    restored.set_state(old_state.getvalue())
    assert [p.tokens for p in restored.ask(8)] == [p.tokens for p in searcher.ask(8)]
    with pytest.raises(ValueError, match="entropy_floor: stored 0.0, now 0.5"):
        make("ppo", space).set_state(old_state.getvalue())
    with pytest.raises(ValueError, match="avoid_repeats: stored False, now True"):
        make("ppo", space, entropy_floor=0.0, avoid_repeats=True).set_state(old_state.getvalue())


@pytest.mark.parametrize("name", ["ppo", "reinforce"])
def test_tell_reports_how_far_the_update_moved_the_policy(name, space):
    # PPO's usual diagnostics, read beside the learning rate: KL(before || after) on the
    # batch, and for PPO the share of samples the update took beyond the clip.
    searcher = make(name, space)
    batch = searcher.ask(12)
    tokens = np.array([proposal.tokens for proposal in batch], np.int32)
    before = searcher.policy(tokens)[0].numpy()
    metrics = searcher.tell(batch, [uses_sign_m(p.rule) + 0.1 * i for i, p in enumerate(batch)])
    after = searcher.policy(tokens)[0].numpy()
    assert metrics["approx_kl"] == pytest.approx(np.mean(before - after), abs=1e-5)
    assert metrics["approx_kl"] > 0  # The update moved it.
    if name == "ppo":
        beyond = np.abs(np.exp(after - before) - 1.0) > searcher.clip_epsilon
        assert metrics["clip_fraction"] == pytest.approx(beyond.mean())
    else:
        assert "clip_fraction" not in metrics


def test_ppo_stops_a_batchs_epochs_once_the_update_passes_target_kl(space):
    """At the defaults, a first batch's four epochs took the policy to an approx_kl of
    ~0.75 (clip_fraction 1): the clip bounds the gradient, not the steps."""
    def update(**hyperparameters):
        searcher = make("ppo", space, seed=3, **hyperparameters)
        batch = searcher.ask(12)
        return searcher.tell(batch, [uses_sign_m(p.rule) + 0.1 * i for i, p in enumerate(batch)])

    free, held = update(), update(target_kl=0.01)
    assert free["epochs"] == 4 and free["approx_kl"] > 0.1
    assert 1 <= held["epochs"] < 4 and held["approx_kl"] < free["approx_kl"]
    with pytest.raises(ValueError, match="target_kl must be positive and finite, got 0.0"):
        make("ppo", space, target_kl=0.0)
    # The threshold is 1.5 times target_kl, as Spinning Up's: approx_kl = mean(before - now).
    searcher = make("ppo", space, target_kl=0.1)
    tokens = np.array([p.tokens for p in searcher.ask(8)], np.int32)
    now, _ = searcher.policy(tokens)
    assert not searcher._moved_far_enough(tokens, now + 0.12)
    assert searcher._moved_far_enough(tokens, now + 0.16)
