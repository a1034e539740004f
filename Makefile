# seg_perception: every set-up step for a fresh machine lives here (idempotent).
#   make demo   the main job (generate a synthetic drive, evaluate it)
#   make test   the test suite (sets up first if needed)
#   make setup  .venv with pinned versions + this package installed into it
#   make lint   ruff (target py310)

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Everything that ends up in the installed package; a change re-installs it.
PACKAGE_FILES := $(shell git ls-files seg_perception launch config models resource setup.py setup.cfg package.xml 2>/dev/null)

# ROS traffic stays on this machine (a hard rule): loopback discovery and a loopback-only
# Fast DDS profile; AMENT_PREFIX_PATH lets ament_index find the package installed in .venv.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_localhost.xml
export AMENT_PREFIX_PATH := $(CURDIR)/$(VENV)
export PYTHONUNBUFFERED := 1

DEMO_DIR ?= build/demo

.PHONY: setup test demo lint clean

setup: $(VENV)/.package-installed

$(VENV)/.deps-installed: requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check pip==25.3
	$(PY) -m pip install --quiet -c constraints.txt -r requirements.txt
	touch $@

$(VENV)/.package-installed: $(VENV)/.deps-installed $(PACKAGE_FILES)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --force-reinstall .
	touch $@

test: setup
	$(PY) -m pytest test

demo: setup
	$(VENV)/bin/seg-demo --out $(DEMO_DIR)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf build $(VENV) *.egg-info
