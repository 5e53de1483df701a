# Every target sets itself up from nothing: `make demo`, `make lint` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo lint test bench bench-scale fixtures clean

install: $(STAMP)

# torch goes in first, pinned: the pin is served from local disk as a CPU build; any looser
# spec pulled in later by a dependency would fetch a multi-GB CUDA build instead.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[all,torch]" --group dev
	touch $(STAMP)

demo: install
	$(PY) -m sse_integrations.cli demo

# ruff and mypy read their settings from pyproject.toml.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy sse_integrations/

test: install
	$(PY) -m pytest -q

# default_model_quality.py is left out: it needs the teacher outputs of a model build (see the model card).
bench: install
	$(PY) benchmarks/encode_speed.py
	$(PY) benchmarks/encode_breakdown.py
	$(PY) benchmarks/two_stage.py

# Hours on 2 cores (the 1M steps above all) and several GB of folders under SSE_SCALE_DIR (default /tmp/sse-scale-bench).
bench-scale: install
	$(PY) benchmarks/scale.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
