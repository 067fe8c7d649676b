# One idempotent setup path for every entry point: `make demo` and `make test`
# both create .venv with the full stack on first use and reuse it afterwards.
#
#   make demo   # set up, then run the main job (tools/demo.py)
#   make test   # set up, then run the tests
#
# PIP_FIND_LINKS may point at a folder holding a prebuilt mmcv wheel
# (for example ../shared/wheels); without one mmcv is built from source.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo demo-quick test clean-venv

setup: $(STAMP)

$(STAMP): tools/setup_env.sh requirements/runtime.txt requirements/tests.txt setup.py
	PYTHON=$(PYTHON) VENV=$(VENV) bash tools/setup_env.sh
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py $(DEMO_ARGS)

demo-quick: $(STAMP)
	$(PY) tools/demo.py --quick $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
