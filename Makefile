# mali-vdev: `make demo` and `make test` do all their own set-up (idempotent, cached).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export MALI_VDEV_CACHE ?= $(HOME)/.cache/mali-vdev

.PHONY: all demo test unit guest-test bench fuzz soak setup kernels deps venv clean

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

# The stock panthor probes the virtual Mali-G610; our uAPI client queries it and runs a job.
DEMO_CMD := echo "== dmesg (panthor)"; dmesg | grep -E "panthor|drm"; \
	echo "== /dev/dri"; ls /dev/dri; \
	echo "== panthor-client query"; panthor-client query; \
	echo "== panthor-client job-store (a command stream writes 0xdeadbeef, its sync object signals)"; \
	panthor-client job-store

# Guest kernels with Tyr (Debian's linux-source-7.2 and 7.3; cached after the first build).
kernels: setup
	$(BIN)/mali-vdev kernel build --version 7.2
	$(BIN)/mali-vdev kernel build --version 7.3

demo: setup
	$(BIN)/mali-vdev boot --load-panthor --guest-cmd '$(DEMO_CMD)'

unit: venv
	$(BIN)/python -m pytest -q -m 'not guest' tests

test: kernels
	$(BIN)/python -m pytest -v -rs tests

bench: venv
	$(BIN)/python -m bench

# The long soak (outside `make test`): 100,000 guest jobs and an hour of driver-model jobs
# against a server process, its RSS, fds and threads sampled and asserted flat.
SOAK_HOST_S ?= 3600
soak: setup
	MALI_VDEV_SOAK=1 $(BIN)/python -m pytest -v -s -rs tests/integration/test_soak.py
	SOAK_HOST_S=$(SOAK_HOST_S) $(BIN)/python -m pytest -v -s tests/unit/test_soak_host.py

# Coverage-guided fuzzing (atheris): every harness of fuzz/ for FUZZ_TIME seconds in turn, the
# corpora kept under $(MALI_VDEV_CACHE)/fuzz; a summary of inputs, inputs/s and coverage.
FUZZ_TIME ?= 600
fuzz: venv
	$(BIN)/pip install -q -e '.[fuzz]'
	$(BIN)/python -m fuzz all --time $(FUZZ_TIME)

clean:
	rm -rf $(VENV) *.egg-info
