# make demo   -- set everything up, then run the demo on the bundled digits
# make test   -- set everything up, then run the whole test suite
# make docs   -- build the documentation site into docs/_build/html (warnings are errors)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint docs benchmarks clean

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

docs: install
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	rm -rf docs/_build docs/generated docs/auto_examples
	@start=$$(date +%s); \
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m sphinx -b html -W --keep-going docs docs/_build/html && \
	echo "make docs: built docs/_build/html/index.html in $$(( $$(date +%s) - start )) s"

benchmarks: install
	$(BIN)/python benchmarks/digits.py --orders

clean:
	rm -rf $(VENV) .pytest_cache skrnn_demo.png docs/_build docs/generated docs/auto_examples
