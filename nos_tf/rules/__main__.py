"""`python -m nos_tf.rules`: prints the vocabulary, generated from the tables."""

from nos_tf.rules import vocab

if __name__ == "__main__":
    print(vocab.describe())
