# mali-vdev: `make demo` and `make test` do all their own set-up (idempotent, cached).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export MALI_VDEV_CACHE ?= $(HOME)/.cache/mali-vdev

.PHONY: all demo test unit guest-test bench setup deps venv clean

all: test

deps:
	@./scripts/install-deps

$(STAMP): pyproject.toml | deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# QEMU with vfio-user-pci, the Debian arm64 kernel, modules, busybox, firmware, initramfs, DTB.
setup: venv
	$(BIN)/mali-vdev setup

demo: setup
	$(BIN)/mali-vdev boot

unit: venv
	$(BIN)/python -m pytest -q -m 'not guest' tests

test: setup
	$(BIN)/python -m pytest -v -rs tests

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) *.egg-info
