# chronorisk: the data scientist's interface. `make` (or `make help`) lists the targets.
# Variables: PRODUCT=diabetes  MEMBERS=20000  SEED=7  DATA=data/synth  BENCH=<name>  TO=<version> REASON=<why>  TUNE=<trials>
#            MAPPING=<mapping yaml>  OUT=<raw folder>  SOURCE=<extract file, optional>  (make import)  BYOD_MEMBERS=4000 (make byod-example)
#            BATCH=<scored parquet>  SINCE=<YYYY-MM-DD>  VERSION=<model version or alias>
#            PORTFOLIO=<features parquet>  REPORT_OUT=reports/<product>
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV    ?= .venv
PYTHON  ?= python3
CLI     := $(VENV)/bin/chronorisk
PRODUCT ?= diabetes
MEMBERS ?= 20000
SEED    ?= 7
DATA    ?= data/synth
BENCH   ?=
TO      ?=
TUNE    ?=
MAPPING ?= experiments/mappings/example_flat.yaml
OUT     ?= data/byod/raw
BYOD_MEMBERS ?= 4000

BATCH   ?=
SINCE   ?=
VERSION ?= champion

.PHONY: help install test lint demo synth validate calibrate features train promote retrain serve bench clean \
        byod-example import monitor model-card report
PORTFOLIO ?=
REPORT_OUT ?= reports/$(PRODUCT)


help: ## list the targets and their variables
	@echo "chronorisk make targets (variables: PRODUCT=$(PRODUCT) MEMBERS=$(MEMBERS) SEED=$(SEED) DATA=$(DATA) BENCH=<name>)"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade "pip>=24"
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev,distributed]'
	touch $@

install: $(VENV)/.installed ## create .venv and install the project from the committed constraints

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: install ## set up everything, then ruff, mypy and the whole pytest suite
	bash scripts/ensure_services.sh
	bash scripts/ensure_chromium.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

demo: install ## the main job end to end on embedded defaults (MEMBERS), in the development environment
	CHRONORISK_ENVIRONMENT=development $(CLI) demo --members $(MEMBERS) --seed $(SEED)

synth: install ## generate a synthetic cohort into DATA (MEMBERS, SEED)
	$(CLI) data synth --members $(MEMBERS) --seed $(SEED) --out $(DATA)

validate: install ## validate DATA against the raw-data contracts, quarantining bad rows
	$(CLI) data validate $(DATA)

calibrate: install ## check the cohort in DATA against the epidemiology targets
	$(CLI) data calibrate $(DATA)

features: install ## build the PRODUCT training snapshot from DATA into data/features/
	$(CLI) features build --product $(PRODUCT) --data $(DATA)

train: install ## train PRODUCT on its snapshot; log to MLflow; register a challenger
	$(CLI) train --product $(PRODUCT)

promote: install ## run the promotion gate for PRODUCT (TO=<version> REASON=<why> rolls back)
	$(CLI) promote --product $(PRODUCT) $(if $(TO),--to $(TO) --reason "$(REASON)",)

retrain: install ## data check, features, train, evaluate, promote for PRODUCT (TUNE=<trials>)
	$(CLI) retrain --product $(PRODUCT) --data $(DATA) $(if $(TUNE),--tune $(TUNE),)

serve: install ## start the BentoML scoring service on 127.0.0.1:3000
	$(CLI) serve

byod-example: install ## own data end to end: flat extract, import, k-fold training, gate, one request (BYOD_MEMBERS); development
	CHRONORISK_ENVIRONMENT=development $(CLI) byod-example --members $(BYOD_MEMBERS) --seed $(SEED)

import: install ## map an insurer's extract onto the contracts: MAPPING=<yaml> OUT=<folder> (SOURCE=<file> reads another file)
	$(CLI) import --mapping $(MAPPING) --out $(OUT) $(if $(SOURCE),--source $(SOURCE))
monitor: install ## drift of PRODUCT's scored population (BATCH=<parquet> or audit log SINCE=<date>); exit 0/1/2
	$(CLI) monitor --product $(PRODUCT) $(if $(BATCH),--batch $(BATCH),) $(if $(SINCE),--since $(SINCE),)

model-card: install ## write PRODUCT's model card (VERSION, default champion) to reports/ as Markdown and HTML
	$(CLI) model-card --product $(PRODUCT) --version $(VERSION)
report: install ## SHAP portfolio report of PRODUCT's champion over DATA (or PORTFOLIO=<features parquet>) into REPORT_OUT
	$(CLI) report --product $(PRODUCT) --data $(DATA) $(if $(PORTFOLIO),--portfolio $(PORTFOLIO),) --out $(REPORT_OUT)

bench: install ## run the benchmarks (all, or BENCH=<name>) into bench/results/, in the development environment
	CHRONORISK_ENVIRONMENT=development $(CLI) bench $(if $(BENCH),--name $(BENCH),)

clean: ## remove generated data, MLflow stores, caches (keeps .venv)
	rm -rf data mlartifacts mlruns mlflow.db audit.db audit.db-wal audit.db-shm audit.db.checkpoints.jsonl reports .pytest_cache .mypy_cache .ruff_cache .hypothesis
