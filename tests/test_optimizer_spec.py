"""nos_tf.optimizer_spec: optimizers by name or rule text, and what each builds."""

import keras
import pytest

import nos_tf
from nos_tf.optimizer_spec import OptimizerSpec, split_optimizer_list


def test_optimizer_list_keeps_commas_inside_rules():
    assert split_optimizer_list(
        'sgd, clip(m, 1e-4) * exp(v),"drop(m, 0.3) * exp(1e-3 * w)" ,adam,') == [
        "sgd", "clip(m, 1e-4) * exp(v)", "drop(m, 0.3) * exp(1e-3 * w)", "adam"]


def test_names_map_to_keras_and_nos_tf_optimizers():
    built = {text: OptimizerSpec.parse(text).build(0.1, total_steps=50)
             for text in ("SGD", "momentum", "adam", "rmsprop", "powersign", "addsign-cd")}
    assert type(built["SGD"]) is keras.optimizers.SGD and built["SGD"].momentum == 0.0
    assert built["momentum"].momentum == 0.9
    assert isinstance(built["adam"], keras.optimizers.Adam)
    assert isinstance(built["rmsprop"], keras.optimizers.RMSprop)
    assert isinstance(built["powersign"], nos_tf.PowerSign)
    assert built["powersign"].sign_decay is None
    assert isinstance(built["addsign-cd"], nos_tf.AddSign)
    assert (built["addsign-cd"].sign_decay, built["addsign-cd"].decay_steps) == ("cosine", 50)
    assert [OptimizerSpec.parse(text).label for text in built] == [
        "SGD", "Momentum", "Adam", "RMSProp", "PowerSign", "AddSign-cd"]


def test_rule_text_becomes_a_rule_optimizer_with_decay_steps():
    spec = OptimizerSpec.parse("exp(ld*sign(g)*sign(m))*g")
    assert spec.label == str(nos_tf.parse("exp(ld * sign(g) * sign(m)) * g"))
    optimizer = spec.build(0.01, total_steps=123, global_clipnorm=5.0)
    assert isinstance(optimizer, nos_tf.RuleOptimizer)
    assert optimizer.decay_steps == 123 and optimizer.global_clipnorm == 5.0
    # Transfer's --transfer_seed reaches a rule's random operands.
    assert OptimizerSpec.parse("g + noise").build(0.1, total_steps=10, seed=5).seed == 5


@pytest.mark.parametrize("text", ["sgd", "momentum", "adam", "rmsprop", "powersign",
                                  "addsign-ld"])
def test_every_optimizer_takes_the_base_keras_arguments(text):
    """gnmt's --clip_norm reaches every optimizer of the table."""
    assert OptimizerSpec.parse(text).build(0.1, total_steps=10,
                                           global_clipnorm=5.0).global_clipnorm == 5.0


def test_bad_rule_text_is_a_rule_syntax_error():
    with pytest.raises(nos_tf.RuleSyntaxError, match="frobnicate"):
        OptimizerSpec.parse("g * frobnicate(m)")


def test_a_sign_decay_on_a_keras_optimizer_is_refused_not_read_as_a_rule():
    with pytest.raises(ValueError, match="only powersign and addsign take a sign decay; "
                                         "for the rule adam minus ld, write 'adam - ld'$"):
        OptimizerSpec.parse("adam-ld")
    assert OptimizerSpec.parse("adam - ld").name is None  # the rule, spelt out
    # sgd is no operand of the rule language: 'sgd - ld', suggested, was refused in turn.
    with pytest.raises(ValueError, match="only powersign and addsign take a sign decay$"):
        OptimizerSpec.parse("sgd-ld")


def test_an_unknown_sign_decay_is_named():
    # It ended with the rule parser's "unknown name 'powersign'": the suffix was wrong.
    with pytest.raises(ValueError, match=r"^unknown optimizer 'PowerSign-xd': -xd is not a "
                                         r"sign decay \(powersign and addsign take -ld, "
                                         r"-cd, -rd\)$"):
        OptimizerSpec.parse("PowerSign-xd")


@pytest.mark.parametrize("text", ["adagrad", "adam_w"])
def test_unknown_optimizer_name_lists_the_names(text):
    with pytest.raises(ValueError) as info:
        OptimizerSpec.parse(text)
    message = str(info.value)
    assert message.startswith(f"unknown optimizer {text!r}: the names are sgd, momentum, adam, "
                              "rmsprop, powersign, addsign")
    assert "-ld, -cd, -rd" in message
    assert "operands are g, g2" in message  # What a rule may use, for a rule that was meant.
