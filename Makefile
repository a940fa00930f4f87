PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO := data/demo.tif

.PHONY: run test lint docs bench examples clean torch slurm

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml setup.py $(wildcard pipeline/kernels/_loops*.[ch]) | $(VENV)/bin/activate
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(DEMO): | $(VENV)/.installed
	$(PY) -m pipeline.demo $(DEMO)

run: $(VENV)/.installed $(DEMO)
	$(VENV)/bin/segpipe run configs/demo.yaml --overwrite

# Azurite, Microsoft's Azure Storage emulator, for the az:// tests (skipped without npm)
AZURITE := .cache/npm/node_modules/.bin/azurite-blob

$(AZURITE):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix .cache/npm azurite@3; \
	else echo "npm not found: the Azure Blob Storage tests will be skipped"; fi

# torch's CPU build, for the TorchScript tests: PyPI's Linux wheel brings about 3 GB of
# CUDA libraries, the CPU build (190 MB) comes from PyTorch's own index or a local wheel
# folder (pip's find-links). Where neither is reachable the TorchScript tests are skipped.
TORCH := $(VENV)/.torch

$(TORCH): | $(VENV)/.installed
	@$(PY) -m pip install --quiet --timeout 30 --retries 1 'torch==2.13.0+cpu' \
		--extra-index-url https://download.pytorch.org/whl/cpu \
		|| echo "torch's CPU build is not reachable: the TorchScript tests will be skipped"
	@touch $@

torch: $(TORCH)

# SLURM (controller, node daemon, munge) from Debian's packages, for the tests that run
# segpipe on a one-node cluster on this machine (tests/slurm_cluster.py starts the
# daemons). Installing needs root and apt-get; without them those tests are skipped.
SLURM_PACKAGES := slurm-wlm munge

slurm:
	@if command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q --no-install-recommends $(SLURM_PACKAGES) >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1 \
			&& apt-get install -y -q --no-install-recommends $(SLURM_PACKAGES) >/dev/null 2>&1; } \
		|| echo "apt-get could not install $(SLURM_PACKAGES): the SLURM tests will be skipped"; \
	else echo "SLURM is not installed and installing it needs root and apt-get: the SLURM tests will be skipped"; fi

test: $(VENV)/.installed $(AZURITE) $(TORCH) slurm
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check pipeline tests benchmarks
	$(VENV)/bin/ruff format --check pipeline tests benchmarks
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q tests/kernels/test_loops_warnings.py
	$(PY) -m pipeline.ops.docs --check docs/ops.md

docs: $(VENV)/.installed
	$(PY) -m pipeline.ops.docs --write docs/ops.md

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_core.py

examples: $(VENV)/.installed
	$(PY) -m pipeline.demo data/demo_2d.tif --shape 512 512
	$(PY) -c "from pipeline.demo import write_demo_slices as w; w('data/slices')"
	$(PY) -c "from pipeline.demo import write_demo_model as w; w('data/demo_model.onnx')"
	$(VENV)/bin/segpipe run configs/blobs_2d.yaml --overwrite
	$(VENV)/bin/segpipe run configs/slices.yaml --overwrite

clean:
	rm -rf $(VENV) out data .cache
