"""What README.md tells a new user, checked against the code it describes."""

import dataclasses

import binaries
from absl import flags
from absl.testing import flagsaver

from nos_tf import proxy_flags

# ProxyConfig fields that say which data the proxy trains on, not how it trains.
_DATA_FIELDS = {"dataset", "data_dir", "train_examples", "validation_examples"}


def _readme_paragraph(start: str) -> str:
    """The README's list item that begins with `start`, up to the next item."""
    text = (binaries.REPO / "README.md").read_text(encoding="utf-8")
    begin = text.index(start)
    return " ".join(text[begin:text.index("\n- ", begin)].split())


def test_the_readme_names_every_way_a_bare_search_trains_unlike_the_paper():
    # The README once called a search without a flagfile "the paper's protocol", while
    # its defaults halve the learning-rate grid and continue the best run.
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["search"])
        bare = proxy_flags.config_from_flags()
        flags.FLAGS(["search", f"--flagfile={binaries.FLAGS_DIR / 'paper.cfg'}"])
        paper = proxy_flags.config_from_flags()
    unlike_the_paper = [
        field.name for field in dataclasses.fields(bare)
        if field.name not in _DATA_FIELDS
        and getattr(bare, field.name) != getattr(paper, field.name)]
    assert unlike_the_paper  # else the README should call it the paper's protocol
    paragraph = _readme_paragraph("Without a flagfile")
    for field in unlike_the_paper:
        assert f"--{field}" in paragraph, (field, paragraph)
