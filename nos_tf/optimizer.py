"""`RuleOptimizer`: any rule of the language as a Keras optimizer.

This is the only bridge from a `Rule` to `keras.optimizers`. It reads like Keras's own
adam.py and lion.py: `build` makes state for the running averages the rule reads and
nothing else, `update_step` writes through `self.assign*`, `get_config` keeps the rule as
text so that `model.save` / `keras.models.load_model` round-trip it.

Speed: the update of all variables (moments and the step) is one XLA computation
(`tf.function(jit_compile=True)`; one for each device that holds variables), also when the
model's own step is not jit-compiled.
On CPU, whole-model XLA makes convolutions ~3× slower than oneDNN, so the model is best
left alone and the optimizer compiled by itself; with one computation instead of one per
variable, the rule's element-wise graph fuses into a single pass over each variable
(benchmark: `python -m nos_tf.benchmarks.step`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers

import keras
import tensorflow as tf
from keras import ops
from keras.src.optimizers.optimizer import base_optimizer_keyword_args

from nos_tf.rules import as_rule
from nos_tf.rules import semantics, vocab


def _traced_into_the_update(name: str, check) -> property:
    """A RuleOptimizer argument its update reads as it is traced: `check(self, name,
    value)` returns the value kept, or raises; setting it drops the traced update."""
    attribute = f"_{name}"

    def set_value(self, value):
        setattr(self, attribute, check(self, name, value))
        self._compiled_updates = {}

    return property(lambda self: getattr(self, attribute), set_value)


@keras.saving.register_keras_serializable(package="nos_tf")
class RuleOptimizer(keras.optimizers.Optimizer):
    """Optimizer that follows an update rule: `w ← w − learning_rate · rule`.

    The rule is written in the language of Bello et al. (2017) (see `nos_tf.parse`), e.g.
    PowerSign `g * exp(sign(g) * sign(m))` or AddSign `(1 + sign(g) * sign(m)) * g`.

    Args:
      rule: a `nos_tf.rules.Rule` or its text.
      learning_rate: a float, a `keras.optimizers.schedules.LearningRateSchedule`, or a
        callable. Defaults to `0.001`. A number must be finite and not negative (0 freezes
        the weights); schedules and callables are Keras's to check.
      beta_1: decay of `m`, the running average of g. Defaults to `0.9`. This and the
        arguments down to `seed` may be set on the optimizer later, as Keras's Adam's
        betas: each is checked, and trained with from the next step (so is `jit_compile`).
      beta_2: decay of `v`, the running average of g². Defaults to `0.999`.
      beta_3: decay of `y`, the running average of g³. Defaults to `0.999`.
      decay_steps: T, the number of updates over which the decay operands `ld`, `cd`
        and `rd` go from 1 to 0 (`rd`, TF1's with one period, is 1 again from T on).
        Required when the rule uses them.
      seed: int seed of the stochastic operands (`noise`, `noise_t`) and of `drop`:
        the same seed gives the same run. Defaults to `None`, which is seed 0, not a
        fresh random seed as elsewhere in Keras: a run is reproducible unless told
        otherwise. An int32: the random ops' seeds are pairs of int32. The numbers drawn
        also depend on whether XLA compiles the update (`jit_compile` here or the
        model's): XLA's random number generator is not TensorFlow's, so a seed draws
        other numbers with and without it.
      jit_compile: whether the update of all variables is one XLA computation (one for
        each device that holds some), fused and compiled once per model. Defaults to
        `True`. `False` runs it op by op: for a
        process that builds thousands of optimizers on tiny problems (a search's cheap
        reward), where compiling costs more than it saves and every compiled update stays
        in memory for the life of the process.
      {{base_optimizer_keyword_args}}

    Needs Keras's TensorFlow backend (`KERAS_BACKEND=tensorflow`, Keras's default): the
    update is a `tf.function` over TensorFlow ops.

    References:
      - [Bello et al., 2017](https://arxiv.org/abs/1709.07417)
    """

    def __init__(
        self,
        rule,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        beta_3=0.999,
        decay_steps=None,
        seed=None,
        jit_compile=True,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        _check_backend(type(self).__name__)
        if isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool):
            # Keras takes nan and -1.0 (trains to NaN weights, or uphill), and refuses 1
            # and np.float32(0.1).
            check_number("learning_rate", learning_rate, "not negative", lambda lr: lr >= 0)
            learning_rate = float(learning_rate)
        super().__init__(
            learning_rate=learning_rate,
            name=name,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            **kwargs,
        )
        self.rule = as_rule(rule)
        self._compiled_updates = {}
        self.beta_1, self.beta_2, self.beta_3 = beta_1, beta_2, beta_3
        self.decay_steps = decay_steps
        self.seed = seed
        self.jit_compile = jit_compile

    def _checked_beta(self, name, beta):
        check_number(name, beta, "in [0, 1)", lambda beta: 0.0 <= beta < 1.0)
        return beta

    def _checked_decay_steps(self, name, decay_steps):
        if decay_steps is None:
            if self.rule.needs_decay_steps:
                raise ValueError(
                    f"The rule `{self.rule}` uses a decay operand (ld, cd or rd), which needs "
                    "`decay_steps`: the total number of updates T. Pass decay_steps=T.")
            return None
        check_number(name, decay_steps, "positive", lambda steps: steps > 0)
        return decay_steps

    def _checked_seed(self, name, seed):
        del name
        return _check_seed(seed)

    def _checked_jit_compile(self, name, jit_compile):
        if jit_compile not in (True, False):  # bool("no") is True.
            raise ValueError(f"Argument `{name}` must be True or False. Received: "
                             f"{name}={jit_compile!r}")
        return bool(jit_compile)

    # What the update reads as it is traced: checked when set, and set, the traced update
    # is dropped, so that the next step is traced again with the new value, as Keras's
    # Adam reads its betas at each step. A beta set after the first step trained on with
    # the old value while `get_config` saved the new one (and a loaded copy trained so).
    beta_1 = _traced_into_the_update("beta_1", _checked_beta)
    beta_2 = _traced_into_the_update("beta_2", _checked_beta)
    beta_3 = _traced_into_the_update("beta_3", _checked_beta)
    decay_steps = _traced_into_the_update("decay_steps", _checked_decay_steps)
    seed = _traced_into_the_update("seed", _checked_seed)
    jit_compile = _traced_into_the_update("jit_compile", _checked_jit_compile)

    @property
    def _decays(self) -> semantics.MomentDecays:
        return semantics.MomentDecays(m=self.beta_1, v=self.beta_2, y=self.beta_3)

    def build(self, var_list):
        """Makes one state variable per model variable for each running average the rule
        reads (`m`, `v`, `y`); PowerSign keeps only `m`, plain `g` rules keep nothing."""
        if self.built:
            return
        for variable in var_list:
            if not keras.backend.is_float_dtype(variable.dtype):
                raise TypeError(
                    f"{type(self).__name__} updates floating-point variables; "
                    f"{getattr(variable, 'path', variable.name)} is {variable.dtype}")
        super().build(var_list)
        self._moments = {
            name: self.add_optimizer_variables(var_list, _MOMENT_PREFIX + name)
            for name in self.rule.moments
        }
        # The δ of the rule's divisions, read from a variable: compiled, a constant δ
        # was folded away (`semantics.Inputs.division_delta`). float64, so that each
        # compute dtype casts it to its own nearest 1e-8, as it would the constant
        # (Keras's Constant initializer would round it through float32 first).
        self._division_delta = self.add_variable(
            shape=(), initializer=lambda shape, dtype: tf.constant(vocab.DIVISION_DELTA, dtype),
            dtype="float64", name="division_delta") if self.rule.divides else None

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        """Keras's, except that a float16 or bfloat16 variable's moments are float32, and
        that outside a tf.distribute strategy each is made on its variable's device.

        In bfloat16 an average's increment (1 − β)·g² is below its resolution once β is
        past 0.99, so `v` would stop moving (and β = 0.999 itself rounds to 1). Only the
        moments: Keras's base class makes its EMA averages and gradient accumulators here
        too, and assigns between them and the variable in the variable's dtype.

        Keras's TensorFlow optimizer colocates them with their variable, which holds when
        it is built eagerly but not in `fit`, which builds it as its step is traced: Adam's
        moments of an embedding kept on another device than the model's landed on the
        default device, where the XLA update of that variable (one device) could not read
        them. A strategy places its variables itself.
        """
        reference = (reference_variable.value if isinstance(reference_variable, keras.Variable)
                     else reference_variable)
        placement = (contextlib.nullcontext() if tf.distribute.has_strategy()
                     else tf.device(reference.device))
        with placement, self._distribution_strategy.extended.colocate_vars_with(reference):
            if not (_is_half(reference_variable.dtype)
                    and (name or "").startswith(_MOMENT_PREFIX)):
                return super().add_variable_from_reference(reference_variable, name, initializer)
            path = getattr(reference_variable, "path", reference_variable.name)
            return self.add_variable(
                shape=reference_variable.shape,
                initializer=initializer,
                dtype="float32",
                name=f"{path.replace('/', '_').replace(':', '_')}_{name or 'var'}",
                layout=getattr(reference_variable, "_layout", None),
            )

    def _update_variable(self, gradient, variable, learning_rate, index, step, division_delta):
        """Moments, then `variable -= lr · rule(...)`, for one variable (traced, not run).
        `step` is `iterations` and `division_delta` the δ variable's value (or None), read
        outside (see `_apply_compiled`).

        A float16 or bfloat16 variable's update is computed in float32 and rounded once
        at the end: in bfloat16 the step counter, and with it the random operands' seeds
        and the decays, would stall after 256 steps, and the bias correction 1 − 0.999^t
        would be 0.
        """
        dtype = variable.dtype
        compute_dtype = "float32" if _is_half(dtype) else dtype
        lr = ops.cast(learning_rate, compute_dtype)
        gradient = ops.cast(gradient, compute_dtype)
        t = ops.cast(step, compute_dtype)
        raw = {name: moments[index] for name, moments in self._moments.items()}
        updated = semantics.update_moments(gradient, raw, self._decays)
        for name, value in updated.items():
            self.assign(raw[name], value)
        inputs = semantics.Inputs(
            g=gradient,
            w=ops.cast(variable, compute_dtype),
            moments=semantics.bias_corrected(updated, t + 1.0, self._decays),
            t=t,
            T=self.decay_steps,
            seed=self.seed,
            stream=index,
            step=step,
            division_delta=(vocab.DIVISION_DELTA if division_delta is None
                            else ops.cast(division_delta, compute_dtype)),
        )
        change = lr * semantics.direction(self.rule.expr, inputs)
        # A rule that reads nothing per coordinate (`ld`, `2 * cd`) is one number. The
        # subtraction is in the compute dtype too: a 16-bit step subtracted in 16 bits
        # rounds twice (a step of half a unit in the last place lost), and a float16 step
        # past 65504 is inf where the new weight is not.
        updated = inputs.w - ops.broadcast_to(change, ops.shape(variable))
        self.assign(variable, ops.cast(updated, dtype))

    def _update_variables(self, indices, grads, variables, learning_rate, step, division_delta):
        for index, gradient, variable in zip(indices, grads, variables):
            self._update_variable(gradient, variable, learning_rate, index, step,
                                  division_delta)

    def _compiled(self, indices):
        """One computation (XLA unless jit_compile=False) that updates the variables at
        `indices` (cached). A partial, not a closure: TensorFlow counts traces per
        function *code*, and the first trace of each new optimizer (one per rule in a
        search or a transfer run) counted as a retrace of one function, warned of from
        the fifth."""
        function = self._compiled_updates.get(indices)
        if function is None:
            function = tf.function(functools.partial(self._update_variables, indices),
                                   jit_compile=self.jit_compile, autograph=False)
            self._compiled_updates[indices] = function
        return function

    def _apply_compiled(self, grads, variables, learning_rate):
        """Updates `variables` (tf.Variables) by the compiled updates: one computation for
        the variables on each device. An XLA computation runs on one device, and one that
        reached a variable on another (an embedding kept on the CPU beside a model on a
        GPU) failed where Keras's Adam trains. The step counter and δ, the optimizer's own
        variables, go in as tensors read on their device, for the same reason."""
        learning_rate = tf.convert_to_tensor(learning_rate)
        step = tf.convert_to_tensor(self.iterations)
        division_delta = (None if self._division_delta is None
                          else tf.convert_to_tensor(self._division_delta))
        by_device: dict[str, list] = {}
        for gradient, variable in zip(grads, variables):
            by_device.setdefault(variable.device, []).append(
                (self._get_variable_index(variable), _dense(gradient), variable))
        for device, group in by_device.items():
            indices, group_grads, group_variables = zip(*group)
            with tf.device(device):
                self._compiled(indices)(list(group_grads), list(group_variables),
                                        learning_rate, step, division_delta)

    def update_step(self, gradient, variable, learning_rate):
        """Keras's per-variable entry point (used under distribution strategies)."""
        if isinstance(variable, keras.Variable):  # As Keras's own optimizers take it.
            variable = variable.value
        self._apply_compiled([gradient], [variable], learning_rate)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        """All variables (on one device) in one XLA computation, except under a
        tf.distribute strategy, where Keras's per-replica path (`update_step`, one
        computation per variable) runs."""
        if tf.distribute.has_strategy():
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        self._apply_compiled(
            grads, [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables],
            learning_rate)

    def __repr__(self):
        return f"<{type(self).__name__} rule={str(self.rule)!r}>"

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "rule": str(self.rule),
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "beta_3": self.beta_3,
                "decay_steps": self.decay_steps,
                "seed": self.seed,
                "jit_compile": self.jit_compile,
            }
        )
        return config


_MOMENT_PREFIX = "moment_"  # Names the state variables of the rule's running averages.


def _is_half(dtype) -> bool:
    return keras.backend.standardize_dtype(dtype) in ("float16", "bfloat16")


def check_number(name: str, value, requirement: str = "", holds=lambda value: True) -> None:
    """Refuses `value` for argument `name` unless it is a finite real number for which
    `holds(value)` (`requirement` says when, in words): a string, None, inf or nan
    otherwise failed later, in a comparison or the first step, naming no argument."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or not holds(value)):
        requirement = f", {requirement}" if requirement else ""
        raise ValueError(f"Argument `{name}` must be a finite number{requirement}. "
                         f"Received: {name}={value!r}")


def _check_backend(optimizer: str) -> None:
    """Refuses Keras's jax and torch backends when the optimizer is made: the update is a
    tf.function over tf ops (and tf.IndexedSlices), which would otherwise fail at the
    first step, deep inside Keras, naming neither the backend nor nos_tf."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            f"nos_tf.{optimizer} needs Keras's TensorFlow backend; KERAS_BACKEND is "
            f"{backend!r}. Set KERAS_BACKEND=tensorflow before Keras is imported."
        )


def _check_seed(seed) -> int:
    """The seed as an int32 (None is 0); Keras's SeedGenerator also refuses a float."""
    if seed is None:
        return 0
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"Argument `seed` must be an integer. Received: seed={seed!r}")
    if not -(2**31) <= seed < 2**31:
        raise ValueError(f"Argument `seed` must fit in an int32. Received: seed={seed}")
    return int(seed)


def _dense(gradient):
    """Embedding gradients arrive as IndexedSlices; moments decay on every row, as in
    Keras's Adam, so the rule sees the dense gradient."""
    if isinstance(gradient, tf.IndexedSlices):
        return tf.convert_to_tensor(gradient)
    return gradient


RuleOptimizer.__doc__ = RuleOptimizer.__doc__.replace(
    "{{base_optimizer_keyword_args}}", base_optimizer_keyword_args
)
