"""absl flags of the proxy task (data, child training protocol, evaluator levers).

Shared by the binaries that score rules (`nos_tf.evaluate`, `nos_tf.search`): import this
module to define the flags, then `config_from_flags()` after absl parsed them. Each flag
is one field of `nos_tf.proxy.ProxyConfig`, with the same defaults (the paper's grid,
epochs and batch size, with successive halving, its cuts ranking on 1,000 validation
images, and the best run continued: flags/paper.cfg is the paper's protocol); the presets
in flags/*.cfg set them for a machine size.
"""

import re

from absl import flags

from nos_tf import data, proxy

_DEFAULTS = proxy.ProxyConfig()

DATASET = flags.DEFINE_enum(
    "dataset", _DEFAULTS.dataset, ["cifar10", "fashion_mnist", "digits"],
    "Data of the proxy task: cifar10 (the paper's, via TFDS), fashion_mnist (works "
    "offline from Debian's dataset-fashion-mnist) or digits (scikit-learn's 8x8, for tests).")
DATA_DIR = flags.DEFINE_string(
    "data_dir", _DEFAULTS.data_dir,
    "Where the dataset is (IDX files for fashion_mnist, or a TFDS data dir); given, nothing "
    "else is looked in.")
TRAIN_EXAMPLES = flags.DEFINE_integer(
    "train_examples", _DEFAULTS.train_examples,
    "Training examples kept after holding out validation (unset: all of them).", lower_bound=1)
VALIDATION_EXAMPLES = flags.DEFINE_integer(
    "validation_examples", _DEFAULTS.validation_examples,
    "Validation examples held out from the training split; the reward is accuracy on "
    "them (unset: a tenth of the split).", lower_bound=1)
CHILD_BATCH_SIZE = flags.DEFINE_integer(
    "child_batch_size", _DEFAULTS.batch_size,
    "Batch size of the child network's training (paper: 100).", lower_bound=1)
LEARNING_RATES = flags.DEFINE_list(
    "learning_rates", [f"{lr:g}" for lr in _DEFAULTS.learning_rates],
    "Grid the child's learning rate is chosen from (paper: 1e-5,...,1).")
LR_SEARCH_EPOCHS = flags.DEFINE_integer(
    "lr_search_epochs", _DEFAULTS.lr_search_epochs,
    "Epochs of training at each learning rate of the grid before choosing (paper: 1).",
    lower_bound=1)
EPOCHS = flags.DEFINE_integer(
    "epochs", _DEFAULTS.epochs,
    "Epochs of the final run at the chosen rate; its validation accuracy is the reward "
    "(paper: 5).", lower_bound=1)
PROXY_SEED = flags.DEFINE_integer(
    "proxy_seed", _DEFAULTS.seed,
    "Seed of the proxy task: validation split, initial weights, batch order, the rule's "
    "random operands. Same rule, seed and flags give the same reward on one machine with "
    "as many TensorFlow threads (a Ray worker has its --cpus_per_worker, the local "
    "executor every core): another count sums in another order, and a close choice of "
    "learning rate may go the other way.")
SCREEN_RULES = flags.DEFINE_bool(
    "screen_rules", _DEFAULTS.screen_rules,
    "Reject rules that fail to build, ignore the gradient or are not descent directions "
    "before training them (reward 0, status rejected).")
HALVING_RATE = flags.DEFINE_integer(
    "halving_rate", _DEFAULTS.halving_rate,
    "Successive halving of the learning-rate grid: at each rung keep the best 1/this; the "
    "last survivors get the full lr-search budget. 1 trains every rate fully.", lower_bound=1)
HALVING_VALIDATION_EXAMPLES = flags.DEFINE_integer(
    "halving_validation_examples", _DEFAULTS.halving_validation_examples,
    "Validation examples that rank the runs at successive halving's cuts; the choice of "
    "the rate and the reward read the whole validation set. 0: all of it at the cuts too.",
    lower_bound=0)
CONTINUE_BEST_RUN = flags.DEFINE_bool(
    "continue_best_run", _DEFAULTS.continue_best_run,
    "The final run continues the chosen rate's lr-search run rather than repeating it "
    "(identical for rules without decay operands; decays then span the final run).")
XLA_UPDATES = flags.DEFINE_bool(
    "xla_updates", _DEFAULTS.xla_updates,
    "Compile each rule's update with XLA: no faster on the proxy, and the compiled updates "
    "stay in memory (~4 MiB a rule). Part of the protocol: runs recorded before this flag "
    "existed used it, so resume them with --xla_updates.")
DIVERGENCE_FACTOR = flags.DEFINE_float(
    "divergence_factor", _DEFAULTS.divergence_factor,
    "A run whose loss exceeds this times log(num_classes) has exploded and stops "
    "(early spikes of 20-30x at high rates are normal and recover, some beyond 100x).")
ABANDON_BELOW = flags.DEFINE_float(
    "abandon_below", _DEFAULTS.abandon_below,
    "Rules whose best lr-search validation accuracy is below this skip the final run "
    "(reward = that accuracy). 0: train every rule to the end, as the paper does.")


# The flags whose values ProxyConfig checks against each other or beyond absl's bounds.
_CHECKED = {
    "learning_rates": LEARNING_RATES, "lr_search_epochs": LR_SEARCH_EPOCHS,
    "epochs": EPOCHS, "divergence_factor": DIVERGENCE_FACTOR, "abandon_below": ABANDON_BELOW,
    "seed": PROXY_SEED, "batch_size": CHILD_BATCH_SIZE, "train_examples": TRAIN_EXAMPLES,
}


@flags.multi_flags_validator([holder.name for holder in _CHECKED.values()])
def _protocol_is_valid(values: dict) -> bool:
    """An impossible protocol is a flag error, found when the flags are parsed.

    absl then says so in two lines naming the flags; found later, in `main`, it was an
    app.UsageError, which prints the binary's docstring and every flag (150 lines for
    search) above the message. ProxyConfig's own checks decide, the other fields at their
    defaults.
    """
    try:
        proxy.ProxyConfig(**{
            field: _learning_rates(values[holder.name]) if holder is LEARNING_RATES
            else values[holder.name] for field, holder in _CHECKED.items()})
    except ValueError as error:
        raise flags.ValidationError(str(error)) from None
    return True


def _learning_rates(texts: list[str]) -> tuple[float, ...]:
    try:
        return tuple(float(lr) for lr in texts)
    except ValueError as error:
        raise ValueError(
            f"--learning_rates must be numbers separated by commas: {error}"
        ) from None


def flag_of_field(field: str) -> str:
    """`--flag` for a ProxyConfig field (a key of its protocol), the name itself for a
    field no flag sets (data_source: where this machine reads the data from). Two flags'
    names differ from their fields', whose names the search gives other flags:
    --child_batch_size sets batch_size, --proxy_seed sets seed."""
    own = {flag.name for flag in flags.FLAGS.get_flags_for_module(__name__)}
    flag = {"batch_size": CHILD_BATCH_SIZE.name, "seed": PROXY_SEED.name}.get(field, field)
    return f"--{flag}" if flag in own else field


def with_flag_names(message: str) -> str:
    """A data loader's error message with the flags for the arguments it names:
    `nos_tf.data` says "validation_examples=100000 must be between 1 and 1436", in its
    arguments' words, which here are these flags' names."""
    return re.sub(rf"(?<![\w-])({TRAIN_EXAMPLES.name}|{VALIDATION_EXAMPLES.name})=",
                  r"--\1=", message)


def config_from_flags() -> proxy.ProxyConfig:
    """The ProxyConfig the parsed flags describe.

    Its `data_source` is the kind of source this machine reads the dataset from
    (`nos_tf.data.source_of`), which every evaluator of the config then keeps to.

    Raises:
      ValueError: a learning rate that is not a number, or an inconsistent protocol (the
        flag validator finds both while parsing; this stays for values set afterwards);
        a `--data_dir` with part of a dataset.
    """
    data_dir = DATA_DIR.value or None  # `--data_dir=` (clearing a flagfile's): none
    return proxy.ProxyConfig(
        dataset=DATASET.value,
        data_dir=data_dir,
        data_source=data.source_of(DATASET.value, data_dir),
        train_examples=TRAIN_EXAMPLES.value,
        validation_examples=VALIDATION_EXAMPLES.value,
        batch_size=CHILD_BATCH_SIZE.value,
        learning_rates=_learning_rates(LEARNING_RATES.value),
        lr_search_epochs=LR_SEARCH_EPOCHS.value,
        epochs=EPOCHS.value,
        seed=PROXY_SEED.value,
        screen_rules=SCREEN_RULES.value,
        halving_rate=HALVING_RATE.value,
        halving_validation_examples=HALVING_VALIDATION_EXAMPLES.value or None,
        continue_best_run=CONTINUE_BEST_RUN.value,
        divergence_factor=DIVERGENCE_FACTOR.value,
        abandon_below=ABANDON_BELOW.value,
        xla_updates=XLA_UPDATES.value,
    )
