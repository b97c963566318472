# wampfabric: two commands on a fresh machine -- `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench bench-web bench-master bench-metering bench-cluster membench compat check clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

## run: initialise ./.crossbar (config + node key) if missing and start the node in the foreground
run: $(STAMP)
	@test -f .crossbar/config.json || test -f .crossbar/config.yaml || $(VENV)/bin/wampfabric init --appdir .
	$(VENV)/bin/wampfabric start --cbdir .crossbar

## test: run the whole test suite
# two pytest workers, a test module per worker at a time (pytest-xdist --dist loadfile): the tests
# mostly wait on processes and sockets, so the suite takes about half the time on two cores
TEST_WORKERS ?= 2
test: $(STAMP)
	bash tests/support/os_packages.sh
	$(PY) -m pytest -q -rs -n $(TEST_WORKERS) --dist loadfile; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

## bench: wampfabric vs Crossbar.io, same machine, same run (see docs/benchmarks.md)
bench: $(STAMP)
	bash bench/setup_crossbar.sh
	$(PY) bench/run.py $(BENCH_ARGS)

## bench-web: the web transport under wrk (static file, HTTP bridge publish and call) vs Crossbar.io (bench/web/run.py)
bench-web: $(STAMP)
	bash tests/support/os_packages.sh
	bash bench/setup_crossbar.sh
	$(PY) bench/web/run.py $(BENCH_ARGS)

## bench-master: N simulated edge nodes (100, 1,000) against our master and Crossbar.io's (bench/README.md)
bench-master: $(STAMP)
	bash bench/setup_crossbar.sh
	$(PY) bench/master/run.py $(BENCH_ARGS)

## bench-metering: submissions/s the metering service accepts, SQLite and PostgreSQL (bench/metering/run.py)
bench-metering: $(STAMP)
	$(PY) bench/metering/run.py $(BENCH_ARGS)

## bench-cluster: one realm on 1 router worker vs N replicas, one rlink hop, SO_REUSEPORT vs a proxy (docs/benchmarks.md)
bench-cluster: $(STAMP)
	$(PY) bench/cluster/run.py $(BENCH_ARGS)

## membench: router memory under slow readers, pending calls and idle connections, vs Crossbar.io
membench: $(STAMP)
	bash bench/setup_crossbar.sh
	$(PY) bench/membench.py $(BENCH_ARGS)

## compat: the same client scenarios against Crossbar.io and wampfabric; prints every differing outcome
compat: $(STAMP)
	bash bench/setup_crossbar.sh
	$(PY) compat/run.py $(COMPAT_ARGS)

check: $(STAMP)
	$(VENV)/bin/wampfabric check --cbdir .crossbar

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
