# Two entry points (README Quick start): `make run` and `make test`. Both create .venv once.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean-venv bundle bundle-reader bundle-full bench-bundle

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "SKELEX Desktop needs Python >= 3.11 (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/skelex-desktop

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	for b in bench/*.py; do $(VENV)/bin/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)

# Installable bundles (Linux x86_64; see installer/): PyInstaller one-folder builds of the reader
# edition (no torch) and the full edition (torch), each packed as .tar.gz and .deb into dist/.
BUNDLE_BUILD := build/bundle
PYINSTALLER = SKELEX_EDITION=$(1) $(VENV)/bin/pyinstaller --noconfirm --log-level WARN \
	--distpath $(BUNDLE_BUILD)/$(1)/dist --workpath $(BUNDLE_BUILD)/$(1)/work installer/skelex-desktop.spec

bundle: bundle-reader bundle-full

bundle-reader: $(STAMP)
	$(call PYINSTALLER,reader)
	installer/package.sh reader $(BUNDLE_BUILD)/reader/dist/skelex-desktop dist

bundle-full: $(STAMP)
	$(call PYINSTALLER,full)
	installer/package.sh full $(BUNDLE_BUILD)/full/dist/skelex-desktop dist

bench-bundle:
	bench/bundle.sh
