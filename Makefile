# Two commands for a newcomer:  `make train` (set up, then run the default job)  and  `make test`.
# Both create .venv on first use. Pass Hydra overrides with ARGS="model=cnn data=fashion_mnist";
# on a machine without a GPU, `make train TORCH=cpu` installs the CPU-only PyTorch.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
ARGS   ?=
# TORCH=cpu: install PyTorch's CPU-only wheels first (a few hundred MB instead of ~6 GB of CUDA packages), from
# PyTorch's own index; any other wheel variant of that index works too (e.g. TORCH=cu126). Empty: the default index.
TORCH  ?=
TORCH_INDEX = https://download.pytorch.org/whl/$(TORCH)

.PHONY: setup train test test-fast lint benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(if $(TORCH),$(PY) -m pip install torch torchvision --index-url $(TORCH_INDEX) || { echo "make: \
		PyTorch's index $(TORCH_INDEX) could not be used (see pip's message above). Fix: retry when it can be \
		reached; or run the same make command without TORCH=$(TORCH) (PyPI's default torch and torchvision)." >&2; \
		exit 1; })
	$(PY) -m pip install -e '.[dev]'
	touch $@

train: setup
	$(PY) train.py $(ARGS)

lint: setup
	$(PY) -m ruff check .

# Lint, then the whole suite (slow tests included).
test: lint
	$(PY) -m pytest -n 2 --dist loadgroup --durations=15

# Everything but the slow tests.
test-fast: lint
	$(PY) -m pytest -n 2 --dist loadgroup -m "not slow"

benchmark: setup
	$(PY) benchmarks/run.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
