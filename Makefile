# The README's two commands are `make run` (the pipeline, end to end, on the embedded local stack) and
# `make test` (the test suite). Both set up what they need first (scripts/bootstrap.sh, idempotent).
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=
# `make test`: pytest-xdist workers, each given whole test files (an end-to-end stack spends much of its time waiting)
TEST_WORKERS ?= 2
RUN_DATE ?=
ARGS ?=
FROM ?=
TO ?=
DATE ?=
FILES ?=

.PHONY: setup run run-s3 backfill scores screens jobs stack-up stack-down ingest land-applications land-outcomes notebooks test test-fast bench \
	clean help

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/' | expand -t 16

setup:  ## everything any target needs: venv, Debian packages, Spark JVM packages, MinIO, Chromium (idempotent)
	@scripts/bootstrap.sh all

setup-%:  # a smaller set-up for one kind of command: fast, run or s3 (see scripts/bootstrap.sh)
	@scripts/bootstrap.sh $*

run: setup-run  ## run the pipeline end to end on the embedded local stack
	@scripts/run_pipeline.sh $(RUN_DATE)

run-s3: setup-s3  ## the same with the lake in the local S3 server's bucket (s3a://loanpipe/lake)
	@STORAGE=s3 scripts/run_pipeline.sh $(RUN_DATE)

backfill: setup-run  ## every date FROM..TO (before today) through Airflow's own backfill: new data, then scoring
	@.venv/bin/python -m loanpipe.dev.stack backfill --from "$(FROM)" --to "$(TO)" $(ARGS)

scores:  ## the latest complete scores from the stack's lake as CSV (ARGS="--date D --out f.csv")
	@.venv/bin/python -m loanpipe.dev.stack scores $(ARGS)

jobs: setup-run  ## the jobs without Airflow: ingest, data_gen, app for RUN_DATE (local Spark)
	@scripts/run_jobs.sh $(RUN_DATE)

stack-up: setup-s3  ## start the local stack (sshd, SMTP, S3, Airflow UI on :28080) and leave it up (STORAGE=s3)
	@.venv/bin/python -m loanpipe.dev.stack start --with-lake --storage $${STORAGE:-local}

stack-down:  ## stop the local stack (no process left behind)
	@.venv/bin/python -m loanpipe.dev.stack stop

ingest: setup-run  ## put a demo-size synthetic lake under storage.root (ARGS="--full" or ARGS="--csv train_v2.csv")
	@$(PY) -m loanpipe.jobs.ingest $(ARGS)

land-applications: setup-run  ## land the applications of run date DATE (DATE=2026-11-05 FILES="a.csv"; no FILES: batch.inbox)
	@$(PY) -m loanpipe.jobs.land applications --date "$(DATE)" $(if $(FILES),$(FILES),--from-inbox)

land-outcomes: setup-run  ## land outcome records that arrived on DATE (DATE=2026-11-05 FILES="a.csv b.parquet")
	@$(PY) -m loanpipe.jobs.land outcomes --date "$(DATE)" $(FILES)

test: setup  ## the whole test suite (what CI runs), whole files spread over TEST_WORKERS workers
	@scripts/run_tests.sh -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test-fast: setup-fast  ## the tests that need no Spark, no service and no end-to-end run (under 2 minutes)
	@scripts/run_tests.sh -m "not spark and not slow and not e2e and not services" $(PYTEST_ARGS)

screens: setup  ## run the pipeline (S3 mode) and photograph it with headless Chromium into screens/
	@.venv/bin/python scripts/take_screens.py $(ARGS)

notebooks: setup-run  ## execute both notebooks on the default data (100,000 rows) and keep the outputs in place
	@.venv/bin/papermill model/model.ipynb model/model.ipynb -k loanpipe --cwd model
	@.venv/bin/papermill spark/spark_model.ipynb spark/spark_model.ipynb -k loanpipe --cwd spark

bench: setup-run  ## benchmarks (print tables, write bench/results/*.json)
	@$(PY) -m bench $(ARGS)

clean:  ## remove local lake, logs and caches of this clone (not the venv)
	rm -rf var .pytest_cache
