# `make run` and `make test` each set up everything they need on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: run test lint bench docs data clean

run: $(VENV)/.installed data
	$(BIN)/lamina train examples/fashion_mnist_mlp.toml --out runs/fashion_mnist_mlp --verbose 2

test: $(VENV)/.installed data
	$(BIN)/ruff check src tests examples $(wildcard benchmarks)
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed-bench data
	$(BIN)/python benchmarks/peers.py

# the documentation site, into site/ (open site/index.html); `make test` builds it --strict
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,plot,images,onnx,sklearn,parallel,dask,bench,docs]"
	touch $@

# torch is in the test install too: the recurrent layers' tests compare with torch.nn.GRU/LSTM
$(VENV)/.installed-bench: $(VENV)/.installed
	touch $@

# Fashion-MNIST from Debian's package when it is missing and apt is usable (root);
# otherwise lamina.datasets looks in $$LAMINA_DATA, ~/.cache/lamina and then downloads.
data:
	@if [ ! -d $(FMNIST) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }; \
	fi

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
