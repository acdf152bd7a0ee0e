"""What README.md, BUILD.md and the Makefile promise a new user, checked against the code."""

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys

import binaries
import pytest
from absl import flags
from absl.testing import flagsaver

from nos_tf import data, proxy_flags, translation_data

# ProxyConfig fields that say which data the proxy trains on, not how it trains.
_DATA_FIELDS = {"dataset", "data_dir", "data_source", "train_examples", "validation_examples"}


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


def _build_md_section(heading: str) -> str:
    text = (binaries.REPO / "BUILD.md").read_text(encoding="utf-8")
    begin = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", begin + 1)
    return text[begin:end if end >= 0 else len(text)]


def test_build_md_names_the_data_folder_flag_each_binary_has():
    # BUILD.md said "pass --data_dir" for TFDS's data, which nos_tf.transfer has no flag
    # for: its flag is --datasets_dir (absl flags are process-wide, and search's is
    # --data_dir).
    text = " ".join(_build_md_section("Requirements").split())
    named = re.findall(r"`--(\w+)=DIR` for ((?:`nos_tf\.\w+`(?: and |, )?)+)", text)
    binaries_named = {}
    for flag, modules in named:
        for module in re.findall(r"`(nos_tf\.\w+)`", modules):
            binaries_named[module] = flag
    assert {"nos_tf.search", "nos_tf.evaluate", "nos_tf.transfer"} <= set(binaries_named), text
    # The flags each binary's --help lists, read in a process of their own: absl flags are
    # process-wide, and nos_tf.search's --store would clash with nos_tf.report's here.
    listing = ("import importlib, json, sys; from absl import flags; print(json.dumps({"
               "name: [f.name for f in flags.FLAGS.get_key_flags_for_module("
               "importlib.import_module(name))] for name in sys.argv[1:]}))")
    process = subprocess.run([sys.executable, "-c", listing, *binaries_named],
                             cwd=binaries.REPO, env=binaries.ENV, capture_output=True,
                             text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    shown = json.loads(process.stdout.splitlines()[-1])
    for module, flag in binaries_named.items():
        assert flag in shown[module], (module, flag)


def test_the_code_map_names_every_module():
    # It left out rules/expr.py, rules/rule.py, driver.py, leaderboard.py and
    # models/batch_norm.py.
    text = _build_md_section("Map of the code")
    rows = text.splitlines()
    missing = []
    for path in sorted((binaries.REPO / "nos_tf").rglob("*.py")):
        relative = path.relative_to(binaries.REPO)
        if path.name in ("__init__.py", "__main__.py"):
            continue
        module = ".".join(relative.with_suffix("").parts)
        package = ".".join(relative.parts[:-1])
        named = (f"`{relative.as_posix()}`" in text or f"`{path.name}`" in text
                 or f"`python -m {module}`" in text
                 # a package's row that lists its modules by name: `nos_tf/rules/` ...
                 # `vocab`, or `python -m nos_tf.benchmarks.<name>` ... `step`
                 or any(f"`{path.stem}`" in row and (f"`{relative.parent.as_posix()}/`" in row
                                                     or f"`python -m {package}.<name>`" in row)
                        for row in rows))
        if not named:
            missing.append(relative.as_posix())
    assert not missing, missing


def test_the_readme_says_what_a_transfer_without_a_preset_costs():
    # The bare `--model=wrn --optimizers=...` line sweeps every optimizer over the grid on
    # all of the training images, which the README did not say: hours on a CPU.
    from nos_tf import transfer  # pylint: disable=import-outside-toplevel
    from nos_tf.optimizer_spec import (  # pylint: disable=import-outside-toplevel
        OptimizerSpec, split_optimizer_list)

    text = (binaries.REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Transfer to bigger models"):]
    section = section[:section.index("\n## ", 1)]
    bare = [line.strip() for line in section.splitlines()
            if line.startswith("    python -m nos_tf.transfer") and "--flagfile" not in line]
    assert bare, section
    prose = " ".join(section.split())
    for line in bare:
        assert "--lrs" not in line and "--wrn_train_examples" not in line  # the defaults
        optimizers = split_optimizer_list(line.split("--optimizers=", 1)[1])
        assert f"each of its {len(optimizers)} optimizers" in prose
    assert transfer._LEARNING_RATES.default == []  # so every rate is swept
    assert f"the {len(transfer._LR_GRID.default)} rates of `--lr_grid`" in prose
    assert f"each for {transfer._EPOCHS.default} epochs" in prose
    assert transfer._TRAIN_EXAMPLES.default is None
    fashion_mnist_train = 60_000 - transfer._VALIDATION_EXAMPLES.default
    assert f"the {fashion_mnist_train:,} Fashion-MNIST training images" in prose
    assert "hours on a CPU" in prose
    # The CPU-sized run it points to parses, and names a rate for every optimizer.
    command = re.search(r"`(--flagfile=flags/transfer_wrn_cpu\.cfg [^`]*)`", prose)[1]
    command = command.replace("=flags/", f"={binaries.FLAGS_DIR}/", 1)
    with flagsaver.flagsaver():
        arguments = flags.FLAGS.read_flags_from_files(shlex.split(command), force_gnu=False)
        flags.FLAGS(["transfer", *arguments])
        specs = [OptimizerSpec.parse(item) for item in flags.FLAGS.optimizers]
        assert None not in transfer.learning_rates_for(specs, flags.FLAGS.lrs)
        assert flags.FLAGS.model == "wrn" and flags.FLAGS.wrn_train_examples == 3000


def test_throughputs_help_lists_every_flag_its_text_uses():
    # Its examples used --train_examples, --validation_examples and --abandon_below, the
    # proxy's flags, which --help did not list.
    process = binaries.run("nos_tf.benchmarks.throughput", "--help", timeout=120)
    text, listing = process.stdout.split("\nflags:\n", 1)
    listed = set(re.findall(r"^\s+--(?:\[no\])?(\w+):", listing, flags=re.MULTILINE))
    used = set(re.findall(r"--(\w+)", text)) - {"help"}
    assert used, text
    unlisted = {name for name in used
                if name not in listed and not (name.startswith("no") and name[2:] in listed)}
    assert not unlisted, unlisted
