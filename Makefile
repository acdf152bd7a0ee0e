# Everything runs from the repository's own virtual environment, made on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBIAN_DATA := dataset-fashion-mnist trans-de-en
PYTEST_ARGS ?=
# Test processes (pytest-xdist). Most of the suite's time is binaries started as a user
# starts them, each importing TensorFlow on one core: two processes keep both cores busy
# (the suite took 19 minutes so against 30 in one, on 2 cores); 0 runs it in one process.
# loadgroup: the tests of an xdist_group run in one process, which computes their
# module-scoped fixture once (tests/binaries.py's run_each).
TEST_WORKERS ?= 2

.PHONY: install data test search clean

# --no-compile: the environment takes ~3 GB and the bytecode of all of it another 0.27 GB
# (a CI machine has run out of disk in this step). Python writes the bytecode of what it
# imports instead (~0.1 GB), where the disk has room: make lets it even where the
# environment says PYTHONDONTWRITEBYTECODE, or every test process would compile
# TensorFlow's modules again (import tensorflow: 10 s instead of 4 s, measured here).
unexport PYTHONDONTWRITEBYTECODE
$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian's offline data sets: Fashion-MNIST (the search's embedded default; a folder of IDX
# files) and the German-English sentence pairs of trans-de-en (the offline GNMT data; one
# dictionary file, so tested with -f: with -d every make ran apt-get, and sudo, again).
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] || [ ! -f /usr/share/trans/de-en ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(DEBIAN_DATA); \
	fi

test: install data
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS) tests

search: install data
	$(PY) -m nos_tf.search --alsologtostderr --flagfile=flags/cpu.cfg

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
