# Two commands do everything on a fresh clone:
#   make course [PROFILE=smoke|cpu|gpu|auto]   execute every notebook, HTML + summary under build/
#   make test                                  ruff, then the test suite, notebooks included (smoke profile)
# Every target first creates .venv and installs the course into it (once).

PROFILE ?= cpu
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.course-installed
PYTEST_ARGS ?=
# knob overrides for the benchmarks, e.g. SET="modalities=FLAIR spacing=1.5"
SET ?=
BENCH_SET := $(foreach s,$(SET),--set $(s))
ONLY ?=

.PHONY: setup course data student instructor test test-fast lint lab bench-unet bench-drive bench-mri bench-transfer bench-cells clean help

help:
	@echo "make course [PROFILE=smoke|cpu|gpu|auto] [ONLY='03 04']  execute the notebooks into build/<profile>/"
	@echo "make data [SETS='open_ms_data BCCD'] [DRIVE_ZIP=path]  download, unpack and check the data sets"
	@echo "make student [FORCE=1]                    the student edition (solutions replaced by stubs) in build/student/"
	@echo "make instructor [FORCE=1]                 the instructor edition (solutions in) in build/instructor/"
	@echo "make test                                 run the tests (notebooks included, smoke profile)"
	@echo "make test-fast                            the tests without executing notebooks"
	@echo "make lint                                 ruff check and ruff format --check (part of make test)"
	@echo "make lab                                  JupyterLab on notebooks/"
	@echo "make bench-unet [PROFILE=cpu]             U-Net size and speed benchmark"
	@echo "make bench-drive [PROFILE=cpu|gpu]        DRIVE: train on 20 images, test on 20 (JSON last line)"
	@echo "make bench-mri [PROFILE=cpu|gpu]          MS lesions: leave-one-patient-out, 2 seeds, false-lesion filter (JSON last line)"
	@echo "    [SET='knob=value ...']                bench-drive/-mri/-transfer/-cells: override knobs, e.g. SET=modalities=FLAIR for bench-mri"
	@echo "make bench-cells [PROFILE=cpu|gpu]        blood cells: grid detector (COCO AP) and blood counts on BCCD (JSON last line)"
	@echo "make bench-transfer [PROFILE=cpu|gpu]     scratch vs ImageNet encoder on DRIVE, 2/5/20 images (JSON last line)"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "setuptools>=64"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

setup: $(STAMP)

course: setup
	$(PY) -m course_utils.notebook_runner --profile $(PROFILE) $(if $(ONLY),--only $(ONLY))

# The open data sets (pooch, checked against data/manifests/); DRIVE from the archive you downloaded.
SETS ?= open_ms_data BCCD
DRIVE_ZIP ?=
data: setup
	$(if $(strip $(SETS)),$(PY) -m course_utils.datasets fetch $(SETS))
	$(if $(DRIVE_ZIP),$(PY) -m course_utils.datasets drive $(DRIVE_ZIP))

student: setup
	$(PY) -m course_utils.editions student $(if $(FORCE),--force)

instructor: setup
	$(PY) -m course_utils.editions instructor $(if $(FORCE),--force)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup lint
	$(PY) -m pytest -m "not notebooks" $(PYTEST_ARGS)

lab: setup
	$(VENV)/bin/jupyter lab notebooks

bench-unet: setup
	$(PY) benchmarks/bench_unet.py --profile $(PROFILE)

bench-drive: setup
	$(PY) benchmarks/bench_drive.py --profile $(PROFILE) $(BENCH_SET)

bench-mri: setup
	$(PY) benchmarks/bench_mri.py --profile $(PROFILE) $(BENCH_SET)

bench-transfer: setup
	$(PY) benchmarks/bench_transfer.py --profile $(PROFILE) $(BENCH_SET)

bench-cells: setup
	$(PY) benchmarks/bench_cells.py --profile $(PROFILE) $(BENCH_SET)

clean:
	rm -rf build .pytest_cache
