# mesh-platform. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STACK ?= dev
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= out/$(STACK)

# Where each stack keeps its state and encrypts its secrets. Local stacks (dev, lab, anything not
# listed below) need no account: a file backend in this checkout and a passphrase. Shared cloud
# stacks use the S3 bucket and KMS key made by `python -m tools.backend bootstrap`.
CLOUD_STACKS := staging prod
AWS_REGION ?= eu-west-1
STATE_BUCKET ?= mesh-platform-state
KMS_ALIAS ?= alias/mesh-platform-state
ifeq ($(filter $(STACK),$(CLOUD_STACKS)),)
  BACKEND ?= file://$(CURDIR)/.pulumi-state
  SECRETS_PROVIDER ?= passphrase
  PREREQS := docker kind kubectl pulumi
else
  BACKEND ?= s3://$(STATE_BUCKET)?region=$(AWS_REGION)
  SECRETS_PROVIDER ?= awskms://$(KMS_ALIAS)?region=$(AWS_REGION)
  PREREQS := aws kubectl pulumi
endif
# Lab stacks are tagged with an expiry at `make up`; `python -m tools.labs expired` lists them.
LAB_TTL_HOURS ?= 8
# A local passphrase file is created once so non-interactive runs work; keep your own in
# PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE to override it.
PASSPHRASE_FILE ?= $(CURDIR)/.pulumi-state/passphrase
export PULUMI_BACKEND_URL := $(BACKEND)
PULUMI := pulumi --non-interactive

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

.PHONY: venv
venv: $(VENV)/.dev ## create .venv with every pinned requirement

.PHONY: test
test: $(VENV)/.dev ## the whole test suite: unit tests, every stack verified, linters
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory verify-all
	$(MAKE) --no-print-directory lint

.PHONY: lint
lint: $(VENV)/.dev ## ruff, shellcheck, actionlint (with shellcheck on every run: step), yamllint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/shellcheck scripts/*.sh .ci/run
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/actionlint .github/workflows/*.yml
	$(VENV)/bin/yamllint --strict .

.PHONY: render
render: $(VENV)/.dev ## render STACK offline into OUT (manifests.yaml, graph.json)
	$(PY) -m tools.render --stack $(STACK) --out $(OUT)

.PHONY: verify
verify: $(VENV)/.dev ## check STACK offline: schemas, flows, routes, invariants
	$(PY) -m tools.verify --stack $(STACK) $(if $(BASE_REF),--base-ref $(BASE_REF),) $(if $(FORMAT),--format $(FORMAT),)

.PHONY: verify-all
verify-all: $(VENV)/.dev ## `make verify` for every stack in stacks/
	@for f in stacks/Pulumi.*.yaml; do s=$${f#stacks/Pulumi.}; s=$${s%.yaml}; \
	  echo "== verify $$s"; $(PY) -m tools.verify --stack "$$s" --format text; done

.PHONY: prereqs
prereqs:
	@missing=(); for t in $(PREREQS); do command -v "$$t" >/dev/null || missing+=("$$t"); done; \
	if [ $${#missing[@]} -gt 0 ]; then \
	  echo "missing for stack $(STACK): $${missing[*]} (README.md, "Prerequisites", lists the versions)" >&2; exit 1; fi
	@if [[ " $(PREREQS) " == *" docker "* ]] && ! docker info >/dev/null 2>&1; then \
	  echo "docker is installed but its engine does not answer (is Docker running?)" >&2; exit 1; fi
	@if [[ " $(PREREQS) " == *" aws "* ]]; then $(PY) -m tools.preflight --stack $(STACK); fi

.PHONY: preflight
preflight: $(VENV)/.runtime ## cloud stacks: credentials, region, EKS version, VPC/subnets
	$(PY) -m tools.preflight --stack $(STACK)

.PHONY: stack
stack: $(VENV)/.runtime prereqs
	@mkdir -p .pulumi-state
	@if [ "$(SECRETS_PROVIDER)" = passphrase ] && [ -z "$${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "$${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] && [ ! -f "$(PASSPHRASE_FILE)" ]; then \
	  umask 077; head -c 24 /dev/urandom | base64 > "$(PASSPHRASE_FILE)"; echo "created $(PASSPHRASE_FILE)"; fi
	@export PULUMI_CONFIG_PASSPHRASE_FILE=$${PULUMI_CONFIG_PASSPHRASE_FILE:-$(PASSPHRASE_FILE)}; \
	$(PULUMI) stack select --create --stack $(STACK) --secrets-provider '$(SECRETS_PROVIDER)'

.PHONY: up
up: stack ## create or update STACK (default dev): cluster, Calico, Istio, apps
	@export PULUMI_CONFIG_PASSPHRASE_FILE=$${PULUMI_CONFIG_PASSPHRASE_FILE:-$(PASSPHRASE_FILE)}; \
	if [ "$(STACK)" = lab ] || [[ "$(STACK)" == lab-* ]]; then \
	  expires="$$($(PY) -c 'import datetime as d; print((d.datetime.now(d.UTC) + d.timedelta(hours=$(LAB_TTL_HOURS))).strftime("%Y-%m-%dT%H:%M:%SZ"))')"; \
	  $(PULUMI) stack tag set --stack $(STACK) mesh-platform:expires "$$expires"; fi; \
	$(PULUMI) up --yes --stack $(STACK)

.PHONY: preview
preview: stack ## show what `make up` would change for STACK
	@export PULUMI_CONFIG_PASSPHRASE_FILE=$${PULUMI_CONFIG_PASSPHRASE_FILE:-$(PASSPHRASE_FILE)}; \
	$(PULUMI) preview --diff --stack $(STACK)

# A kind stack is torn down cluster first: `kind delete cluster` removes every object at once, then
# `pulumi destroy` finds the cluster unreachable and, with the provider's deleteUnreachable, drops
# the Kubernetes resources from state without calling an API server, so no finalizer, namespace
# or CRD can make it wait. Cloud stacks are destroyed resource by resource, in dependency order.
.PHONY: destroy
destroy: $(VENV)/.runtime prereqs ## destroy STACK and remove it
	@export PULUMI_CONFIG_PASSPHRASE_FILE=$${PULUMI_CONFIG_PASSPHRASE_FILE:-$(PASSPHRASE_FILE)}; \
	if ! $(PULUMI) stack select --stack $(STACK) >/dev/null 2>&1; then echo "no stack $(STACK) in $(BACKEND); nothing to destroy"; exit 0; fi; \
	name="$$($(PULUMI) stack output clusterName --stack $(STACK) 2>/dev/null || true)"; \
	if [ -n "$$name" ] && command -v kind >/dev/null && kind get clusters 2>/dev/null | grep -qx "$$name"; then \
	  echo "deleting kind cluster $$name"; kind delete cluster --name "$$name"; fi; \
	$(PULUMI) destroy --yes --skip-preview --stack $(STACK) && $(PULUMI) stack rm --yes --stack $(STACK)

.PHONY: e2e
e2e: ## on a machine with Docker: `make up STACK=lab`, scripts/e2e.sh, then always `make destroy`
	@trap '$(MAKE) --no-print-directory destroy STACK=lab' EXIT; \
	$(MAKE) --no-print-directory up STACK=lab && scripts/e2e.sh lab

.PHONY: clean
clean: ## remove rendered output and caches (not .venv, not state)
	rm -rf out .pytest_cache .ruff_cache
