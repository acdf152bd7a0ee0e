"""The presets of flags/, found from a checkout and from an installed package, and what
setup.py installs."""

import runpy
import shutil
import sys

import binaries
import pytest
import setuptools
from absl import flags

from nos_tf import flag_checks, presets, translation_data

PRESET_FILES = sorted(binaries.FLAGS_DIR.glob("*.cfg"))


def _setup_arguments(monkeypatch) -> dict:
    """The keyword arguments setup.py gives setuptools.setup, read without building."""
    arguments = {}
    monkeypatch.setattr(setuptools, "setup", arguments.update)
    monkeypatch.chdir(binaries.REPO)  # Where pip runs it: data_files are relative to it.
    runpy.run_path(str(binaries.REPO / "setup.py"))
    return arguments


def test_setup_installs_every_preset_where_presets_looks(monkeypatch):
    # The wheel once held no flagfile: the README's `--flagfile=flags/cpu.cfg` had nothing
    # to name outside a checkout.
    (folder, files), = _setup_arguments(monkeypatch)["data_files"]
    assert folder == presets.SHARE
    assert files == [str(path.relative_to(binaries.REPO)) for path in PRESET_FILES]
    assert all((binaries.REPO / file).is_file() for file in files)


def test_setup_keeps_gnmts_libraries_in_an_extra(monkeypatch):
    # tensorflow-text has no wheel for Windows: as a requirement it stopped `pip install
    # nos_tf` there for a user who wants RuleOptimizer alone.
    arguments = _setup_arguments(monkeypatch)
    required = {requirement.split("[")[0] for requirement in arguments["install_requires"]}
    gnmt = set(arguments["extras_require"]["gnmt"])
    assert {"tensorflow-text", "sacrebleu"} <= gnmt
    assert not gnmt & required
    assert gnmt <= set(arguments["extras_require"]["test"])  # `make test` installs them.
    assert arguments["version"] == __import__("nos_tf").__version__


def test_presets_are_the_checkouts_flag_files():
    assert presets.available() == {path.stem: str(path) for path in PRESET_FILES}
    assert presets.path("cpu") == presets.path("cpu.cfg") == str(binaries.FLAGS_DIR / "cpu.cfg")


def test_presets_of_an_installed_package_are_found_under_its_prefix(tmp_path, monkeypatch):
    # What `pip install` leaves: no flags/ beside the package, the files under
    # <prefix>/share/nos_tf/flags.
    share = tmp_path / presets.SHARE
    share.mkdir(parents=True)
    shutil.copy(binaries.FLAGS_DIR / "smoke.cfg", share)
    monkeypatch.setattr(presets, "__file__", str(tmp_path / "site" / "nos_tf" / "presets.py"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert presets.available() == {"smoke": str(share / "smoke.cfg")}
    with pytest.raises(FileNotFoundError, match=r"no preset 'cpu': choose one of smoke$"):
        presets.path("cpu")
    shutil.rmtree(share)
    with pytest.raises(FileNotFoundError, match=r"no presets found: looked in .*share"):
        presets.path("smoke")


@pytest.fixture
def install_folders(tmp_path, monkeypatch):
    """A checkout's flags/ and the three install prefixes' shares under tmp_path, empty."""
    checkout = tmp_path / "checkout"
    monkeypatch.setattr(presets, "__file__", str(checkout / "nos_tf" / "presets.py"))
    roots = {name: tmp_path / name for name in ("prefix", "base", "user")}
    monkeypatch.setattr(sys, "prefix", str(roots["prefix"]))
    monkeypatch.setattr(sys, "base_prefix", str(roots["base"]))
    monkeypatch.setattr(presets.site, "USER_BASE", str(roots["user"]))
    return {"checkout": checkout / "flags",
            **{name: root / presets.SHARE for name, root in roots.items()}}


def _write_preset(folder, name):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.cfg").write_text("--seed=1\n")
    return str(folder / f"{name}.cfg")


def test_presets_prefer_the_checkout_then_each_prefix_in_order(install_folders):
    for folder, name in (("user", "u"), ("base", "b"), ("prefix", "p"), ("checkout", "c")):
        written = _write_preset(install_folders[folder], name)
        assert presets.available() == {name: written}


def test_a_folder_without_presets_is_passed_over(install_folders):
    install_folders["checkout"].mkdir(parents=True)
    (install_folders["checkout"] / "README").write_text("")
    installed = _write_preset(install_folders["prefix"], "cpu")
    assert presets.available() == {"cpu": installed}
    assert presets.path("cpu.cfg") == installed


def test_presets_binary_prints_a_path_to_pass_to_flagfile():
    process, listed, unknown = binaries.run_each(
        "nos_tf.presets", [["transfer_wrn_cpu"], [], ["cpus"]])
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout == f"{binaries.FLAGS_DIR / 'transfer_wrn_cpu.cfg'}\n"
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert [line.split() for line in listed.stdout.splitlines()] == [
        [path.stem, str(path)] for path in PRESET_FILES]
    assert unknown.returncode == 1
    assert unknown.stderr.splitlines()[-1].startswith("error: no preset 'cpus': choose one of ")


@pytest.mark.parametrize("missing, tokenizer", [("tensorflow_text", "wordpiece"),
                                                ("sacrebleu", "word")])
def test_gnmt_without_its_extra_says_how_to_install_it(tmp_path, missing, tokenizer):
    # Before the sentences load and the word pieces learn (a minute): at once, in one line.
    process = binaries.run_without(
        missing, "nos_tf.transfer", "--model=gnmt", f"--tokenizer={tokenizer}",
        f"--output_dir={tmp_path}")
    assert process.returncode == 1, process.stderr[-2000:]
    assert process.stderr.splitlines()[-1] == (
        f"error: GNMT translation needs {missing}: pip install 'nos_tf[gnmt]' "
        "(in a checkout: pip install -e '.[gnmt]')")
    assert "Traceback" not in process.stderr and "gnmt data" not in process.stderr


def test_word_tokenizer_needs_no_tensorflow_text(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_text", None)
    translation_data.check_libraries("word")
    with pytest.raises(ImportError, match=r"needs tensorflow_text: pip install 'nos_tf\[gnmt\]'"):
        translation_data.check_libraries("wordpiece")


@pytest.mark.parametrize("argv, refused", [
    (["--batch_size=10"], "batch_size"),  # The search's, passed over in the preset's file.
    (["--nobatch_size"], "nobatch_size"),
    (["-store", "x"], "store"),
    (["--child_batch_size", "10", "--screen_rules", "--noscreen_rules"], None),
    (["--rule", "-g", "--dataset", "-digits"], None),  # Values of flags, not flags.
    (["--undefok=batch_size,units", "--batch_size=3", "--nounits"], None),  # Asked for.
    (["--flagfile=flags/cpu.cfg", "--", "--batch_size=3"], None),  # Past absl's flags.
])
def test_a_flag_this_program_lacks_is_refused_from_the_command_line(argv, refused):
    """A preset's --undefok holds for the whole command line: evaluate with the cpu
    preset took --batch_size=10 and ran with the child's batch unchanged (the binary's
    refusal: tests/test_evaluate.py)."""
    evaluate_flags = flags.FlagValues()  # Some of nos_tf.evaluate's.
    flags.DEFINE_integer("child_batch_size", 100, "", flag_values=evaluate_flags)
    flags.DEFINE_bool("screen_rules", True, "", flag_values=evaluate_flags)
    flags.DEFINE_multi_string("rule", [], "", flag_values=evaluate_flags)
    flags.DEFINE_string("dataset", "digits", "", flag_values=evaluate_flags)
    if refused is None:
        flag_checks.refuse_undefined_flags_of_the_command_line(argv, evaluate_flags)
    else:
        with pytest.raises(ValueError, match=f"^--{refused} is not a flag of this program"):
            flag_checks.refuse_undefined_flags_of_the_command_line(argv, evaluate_flags)


def test_a_flagfile_that_is_not_text_is_named_in_a_line(tmp_path):
    """absl raised UnicodeDecodeError from inside its parser, a traceback naming no file,
    for `--flagfile=model.h5` or a preset that includes one."""
    binary = tmp_path / "weights.h5"
    binary.write_bytes(b"--seed=1\n\x89HDF\r\n\xd0\xff")
    text = tmp_path / "text.cfg"
    text.write_text("--seed=2\n")
    preset = tmp_path / "preset.cfg"
    later_binary = tmp_path / "later.h5"
    later_binary.write_bytes(b"\x89HDF\r\n\xd0\xff")
    preset.write_text(f"--flagfile={text}\n--flagfile={binary}\n--flagfile={later_binary}\n")
    try:
        with pytest.raises(SystemExit, match=rf"^FATAL Flags parsing error: "
                           rf"--flagfile={binary} is not a text file of flags \("):
            flag_checks.parse_flags_of_the_command_line(["prog", f"--flagfile={preset}"])
    finally:
        flags.FLAGS.unparse_flags()
