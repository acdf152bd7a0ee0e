"""The benchmarks: python -m nos_tf.benchmarks.<name>. Each prints ratios measured side by side."""
