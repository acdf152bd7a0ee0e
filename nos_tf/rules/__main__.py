"""`python -m nos_tf.rules`: prints the vocabulary of the rule language, generated from
its tables (`nos_tf.rules.vocab`)."""

import sys

from absl import app

from nos_tf.rules import vocab


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}")  # One line, not usage.
    print(vocab.describe())


if __name__ == "__main__":
    app.run(main)
