"""What README.md, BUILD.md and the Makefile promise a new user, checked against the code."""

import dataclasses
import os
import subprocess

import binaries
import pytest
from absl import flags
from absl.testing import flagsaver

from nos_tf import data, proxy_flags, translation_data

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


@pytest.mark.skipif(
    not (os.path.isdir(data.DEBIAN_FASHION_MNIST_DIR)
         and os.path.isfile(translation_data.TRANS_DE_EN_PATH)),
    reason="needs Debian's dataset-fashion-mnist and trans-de-en installed")
def test_make_data_leaves_apt_alone_where_the_debian_data_is(tmp_path):
    # `make test` and `make search` run `make data` first; it once took trans-de-en's
    # dictionary file for a missing folder and ran (sudo) apt-get every time.
    calls = tmp_path / "calls"
    for tool in ("apt-get", "sudo"):
        stub = tmp_path / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.run(["make", "-s", "data"], cwd=binaries.REPO, env=env,
                             capture_output=True, text=True, timeout=60)
    assert process.returncode == 0, process.stderr
    assert not calls.exists(), calls.read_text()


def test_every_phony_make_target_has_a_rule():
    # `.PHONY` once named a `benchmarks` target that had no rule: `make benchmarks` said
    # "Nothing to be done" and ran nothing.
    lines = (binaries.REPO / "Makefile").read_text(encoding="utf-8").splitlines()
    phony = next(line for line in lines if line.startswith(".PHONY:")).split(":", 1)[1]
    targets = {line.split(":", 1)[0] for line in lines
               if line[:1].isalpha() and ":" in line and "=" not in line.split(":", 1)[0]}
    assert set(phony.split()) <= targets, set(phony.split()) - targets
