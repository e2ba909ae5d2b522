# make demo   -- set everything up, then run the demo on the bundled digits
# make test   -- set everything up, then run the whole test suite
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint benchmarks clean

$(VENV)/.installed: pyproject.toml .ci/install
	bash .ci/install $(VENV)
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/skrnn demo

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff check skrnn tests examples benchmarks

benchmarks: install
	$(BIN)/python benchmarks/digits.py --orders

clean:
	rm -rf $(VENV) .pytest_cache skrnn_demo.png
