# mesh-platform. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
# GNU make 3.81 (what macOS ships) ignores .SHELLFLAGS, so recipes would run without -e and
# pipefail and carry on past failures; 3.82 added it, and `oneshell` to .FEATURES with it.
ifeq ($(filter oneshell,$(.FEATURES)),)
$(error GNU make 3.82 or newer is needed, this is $(MAKE_VERSION); on macOS: brew install make, then run gmake)
endif
.DEFAULT_GOAL := help
# Every path below is relative to the checkout's top directory: `make -f ../Makefile` from a
# subdirectory would look for .venv, stacks/ and out/ in the wrong place.
TOP := $(patsubst %/,%,$(dir $(realpath $(firstword $(MAKEFILE_LIST)))))
ifneq ($(realpath $(CURDIR)),$(TOP))
$(error run make in the checkout's top directory: cd $(TOP) (or make -C $(TOP) ...); this is $(CURDIR))
endif

STACK ?= dev
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= out/$(STACK)

# Where each stack keeps its state and encrypts its secrets. Local stacks (dev, lab, anything not
# listed below) need no account: a file backend in this checkout and a passphrase. Shared cloud
# stacks use the S3 bucket and KMS key made by `.venv/bin/python -m ops.backend bootstrap`, and so do
# shared labs (lab-<name>): their kind cluster runs on the owner's machine, their state where the
# lab reaper (.github/workflows/lab-reaper.yml) finds and decrypts it.
CLOUD_STACKS := staging prod
SHARED_LABS := lab-%
AWS_REGION ?= eu-west-1
STATE_BUCKET ?= mesh-platform-state
KMS_ALIAS ?= alias/mesh-platform-state
ifneq ($(filter $(CLOUD_STACKS),$(STACK)),)
  BACKEND ?= s3://$(STATE_BUCKET)?region=$(AWS_REGION)
  SECRETS_PROVIDER ?= awskms://$(KMS_ALIAS)?region=$(AWS_REGION)
else ifeq ($(STACK),local)
  # The local control plane's stack (`make local-up`, then `source out/local/env`): its state and
  # passphrase are the ones out/local/env names; it needs the built pulumi only.
  BACKEND ?= $(or $(PULUMI_BACKEND_URL),file://$(CURDIR)/out/local/state)
  SECRETS_PROVIDER ?= passphrase
else ifneq ($(filter $(SHARED_LABS),$(STACK)),)
  BACKEND ?= s3://$(STATE_BUCKET)?region=$(AWS_REGION)
  SECRETS_PROVIDER ?= awskms://$(KMS_ALIAS)?region=$(AWS_REGION)
else
  BACKEND ?= file://$(CURDIR)/.pulumi-state
  SECRETS_PROVIDER ?= passphrase
endif
# Lab stacks are tagged with an expiry at `make up`; `.venv/bin/python -m ops.labs expired` lists them.
LAB_TTL_HOURS ?= 8
# A local passphrase file is created once so non-interactive runs work; keep your own in
# PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE to override it.
PASSPHRASE_FILE ?= $(CURDIR)/.pulumi-state/passphrase
export PULUMI_BACKEND_URL := $(BACKEND)
PULUMI := pulumi --non-interactive
# `pulumi stack init` keeps the stack's secrets manager in the state as well as in its stack file
# (encryptionsalt; or secretsprovider and encryptedkey). With this set, the CLI reads it from the
# state whenever the stack file has none, so committed stack files never carry one: a fresh clone
# decrypts with the state's manager (KMS for shared stacks) instead of asking for a passphrase.
export PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER := true
STACK_FILE := stacks/Pulumi.$(STACK).yaml
# The stacks there are: a stack is created only when its stack file exists, so a typo such as
# STACK=stagng never becomes a new stack (and, on a cloud, a new billed cluster).
STACKS := $(sort $(patsubst stacks/Pulumi.%.yaml,%,$(wildcard stacks/Pulumi.*.yaml)))
STACK_GOALS := doctor ready preflight stack up preview destroy
ifneq ($(filter $(STACK_GOALS),$(MAKECMDGOALS)),)
ifeq ($(wildcard $(STACK_FILE)),)
$(error no stack $(STACK): there is no $(STACK_FILE), and make creates no stack without one; stacks here: $(STACKS) (a new stack: write its stack file first, README.md "Add your own service"))
endif
endif
# An EKS stack (its cluster.provider in the stack file): `make up` names the account, region and
# what is billed before it asks, and runs the cloud preflight.
ON_EKS := $(shell grep -qE '^ +provider: *"?eks' $(STACK_FILE) 2>/dev/null && echo yes)
SECRETS_KEYS := ^(encryptionsalt|encryptedkey|secretsprovider):
# Shell prologue of every recipe that runs pulumi: the passphrase file for local stacks, and, when
# the recipe ends (however it ends), the secrets manager lines pulumi writes into a tracked stack
# file taken out again; the state keeps them (above).
PULUMI_ENV = export PULUMI_CONFIG_PASSPHRASE_FILE=$${PULUMI_CONFIG_PASSPHRASE_FILE:-$(PASSPHRASE_FILE)}; \
  trap 'f="$(STACK_FILE)"; if [ -f "$$f" ] && git ls-files --error-unmatch "$$f" >/dev/null 2>&1 \
    && grep -qE "$(SECRETS_KEYS)" "$$f"; then grep -vE "$(SECRETS_KEYS)" "$$f" >"$$f.clean" || true; \
    cat "$$f.clean" >"$$f"; rm -f "$$f.clean"; fi' EXIT;

# `make help` lists every target with a `## ` comment and every variable with a `#> NAME text`
# line below, with the value it has now (command line and environment included).
#> STACK             which stack: stacks/Pulumi.<STACK>.yaml; the stacks here: $(STACKS)
#> YES               `make up`: apply without showing the preview and asking first (CI set does the same)
#> OUT               where `make render` writes manifests.yaml and graph.json
#> FORMAT            `make verify` report format: text, markdown or json (empty: text)
#> BASE_REF          `make verify`: also report changes in routes and flows against this git ref
#> BACKEND           Pulumi state backend (PULUMI_BACKEND_URL): a file backend here, S3 for shared stacks
#> SECRETS_PROVIDER  how stack secrets are encrypted: passphrase (local) or awskms:// (shared)
#> STATE_BUCKET      S3 bucket of shared stacks' state (`.venv/bin/python -m ops.backend bootstrap` makes it)
#> AWS_REGION        region of that bucket and its KMS key
#> KMS_ALIAS         alias of the KMS key shared stacks' secrets are encrypted with
#> LAB_TTL_HOURS     hours until a lab stack counts as expired (`.venv/bin/python -m ops.labs expired`)
#> PYTHON            the Python that creates .venv
HELP_VARS := STACK YES OUT FORMAT BASE_REF BACKEND SECRETS_PROVIDER STATE_BUCKET AWS_REGION KMS_ALIAS LAB_TTL_HOURS PYTHON

.PHONY: help
help: ## list the targets and the variables they read
	@echo "Targets (make TARGET [VARIABLE=value ...]):"
	@grep -E '^[a-z0-9][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'
	@echo; echo "Variables (make TARGET NAME=value, or the environment; each with its value now):"
	@$(foreach v,$(HELP_VARS),printf '  %-17s %s\n  %-17s now: %s\n' '$(v)' \
	  "$$(sed -n 's/^#> $(v)  *//p' $(firstword $(MAKEFILE_LIST)) | sed 's/$$(STACKS)/$(STACKS)/')" '' '$(subst ','\'',$($(v)))';)

# The one slow step (about 45 s on a fresh checkout): each phase says what it does, and pip's own
# lines (Collecting ..., Installing ...) show it moving. It happens once per checkout; the full
# set (requirements-dev.txt) takes 1.0 GB under .venv (du -sh .venv: 1023M).
# $(call venv_install,REQUIREMENTS FILE,how long it takes); pipefail fails the step when pip does.
define venv_install
	@echo "$(VENV) is missing or older than $(1): installing the pinned packages once (up to about 1 GB under $(VENV))"
	@echo "[1/2] creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV)
	@echo "[2/2] installing $(1) into $(VENV) ($(2))"
	@$(PY) -m pip install --disable-pip-version-check --progress-bar off -r $(1) \
	  | { grep --line-buffered -E '^(Collecting|Installing|Successfully)' || true; }
endef

$(VENV)/.runtime: requirements.txt
	$(call venv_install,requirements.txt,about 45 s)
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt
	$(call venv_install,requirements-dev.txt,about a minute)
	@touch $@ $(VENV)/.runtime

.PHONY: venv
venv: $(VENV)/.dev ## create .venv with every pinned requirement

.PHONY: test
test: $(VENV)/.dev ## the whole test suite: unit tests, every stack verified, linters
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory verify-all
	$(MAKE) --no-print-directory lint

# The inner loop while changing components/, mesh_platform/ or __main__.py: the program's own tests
# (seconds), without the `slow` ones (tests/conftest.py says which) and without tests/itest.
.PHONY: test-fast
test-fast: $(VENV)/.dev ## the program's own tests only, in seconds (no verifier self-tests, sweeps, tools, itest)
	$(PY) -m pytest -q -m 'not slow and not itest' --ignore=tests/itest

.PHONY: lint
lint: $(VENV)/.dev ## ruff, mypy, shellcheck, actionlint (with shellcheck on every run: step), yamllint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/shellcheck scripts/*.sh .ci/run
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/actionlint .github/workflows/*.yml
	$(VENV)/bin/yamllint --strict .

.PHONY: render
render: $(VENV)/.dev ## render STACK offline into OUT (manifests.yaml, graph.json)
	$(PY) -m offline.render --stack $(STACK) --out $(OUT)

.PHONY: verify
verify: $(VENV)/.dev ## check STACK offline (FORMAT=text|markdown|json, BASE_REF=git ref, OUT=report file)
	@$(PY) -m offline.verify --stack $(STACK) $(if $(BASE_REF),--base-ref $(BASE_REF),) $(if $(FORMAT),--format $(FORMAT),) \
	  $(if $(filter command line environment,$(origin OUT)),--out $(OUT),)

.PHONY: bench
bench: $(VENV)/.dev ## time render and verify on generated stacks of 10 to 300 services
	$(PY) -m offline.verify.bench

.PHONY: verify-all
verify-all: $(VENV)/.dev ## `make verify` for every stack in stacks/
	@rc=0; for f in stacks/Pulumi.*.yaml; do s=$${f#stacks/Pulumi.}; s=$${s%.yaml}; \
	  echo "== verify $$s"; $(PY) -m offline.verify --stack "$$s" --format text || rc=1; done; exit $$rc

# Every tool at once, with the system Python and its standard library only (before .venv exists):
# ops/preflight.py, "the tools on this machine". DOCTOR_DONE=1 skips it where a caller ran it.
.PHONY: doctor
doctor: ## every tool STACK needs at once: present, version in range, Docker running, host ports free; install lines
	@$(PYTHON) -m ops.preflight --tools --stack $(STACK)

# What up, preview and destroy need, cheapest first: the tools (a second), then the virtualenv
# (the slow install, only once those hold), then the cloud preflight (Python, so after it). A
# recursive make keeps that order under `make -j` too.
.PHONY: ready
ready: $(if $(DOCTOR_DONE),,doctor) ## doctor, then .venv, then (EKS stacks) preflight
	@$(MAKE) --no-print-directory $(VENV)/.runtime
	@$(if $(ON_EKS),$(PY) -m ops.preflight --stack $(STACK),true)

.PHONY: preflight
preflight: $(VENV)/.runtime ## cloud stacks: credentials, region, EKS version, VPC/subnets
	$(PY) -m ops.preflight --stack $(STACK)

.PHONY: stack
stack: ready ## select STACK in BACKEND, creating it (and a local passphrase) the first time; only with a stack file
	@mkdir -p .pulumi-state
	@if [ "$(SECRETS_PROVIDER)" = passphrase ] && [ -z "$${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "$${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] && [ ! -f "$(PASSPHRASE_FILE)" ]; then \
	  umask 077; head -c 24 /dev/urandom | base64 > "$(PASSPHRASE_FILE)"; echo "created $(PASSPHRASE_FILE)"; fi
	@$(PULUMI_ENV) \
	$(PULUMI) stack select --create --stack $(STACK) --secrets-provider '$(SECRETS_PROVIDER)'

# Shows what it would change and asks, unless YES=1 or CI is set; an EKS stack first names the
# AWS account, region and what it bills by the hour.
.PHONY: up
up: stack ## create or update STACK (default dev): shows the preview and asks first (YES=1 or CI: no question)
	@$(PULUMI_ENV) \
	$(if $(ON_EKS),$(PY) -m ops.preflight --billing --stack $(STACK);) \
	if [ -z "$(YES)" ] && [ -z "$${CI:-}" ]; then \
	  $(PULUMI) preview --diff --stack $(STACK); \
	  printf 'Apply these changes to stack %s? [y/N] ' '$(STACK)'; \
	  if ! read -r answer || ! [[ "$$answer" =~ ^(y|Y|yes)$$ ]]; then \
	    echo; echo "nothing applied to stack $(STACK): answer y to apply (YES=1 applies without asking)" >&2; exit 1; fi; \
	fi; \
	if [ "$(STACK)" = lab ] || [[ "$(STACK)" == lab-* ]]; then \
	  expires="$$($(PY) -c 'import datetime as d; print((d.datetime.now(d.UTC) + d.timedelta(hours=$(LAB_TTL_HOURS))).strftime("%Y-%m-%dT%H:%M:%SZ"))')"; \
	  $(PULUMI) stack tag set --stack $(STACK) mesh-platform:expires "$$expires"; fi; \
	$(PULUMI) up --yes --stack $(STACK)

.PHONY: preview
preview: stack ## show what `make up` would change for STACK
	@$(PULUMI_ENV) \
	$(PULUMI) preview --diff --stack $(STACK)

# A kind stack is torn down cluster first, then its state: `kind delete cluster` removes every
# object at once (no finalizer, namespace or CRD can make it wait), and `pulumi stack rm --force`
# drops the state, since everything in it lived in that cluster. `pulumi destroy` cannot do that
# part: the Kubernetes provider refuses to delete a Helm release on an unreachable cluster, with
# or without deleteUnreachable (provider.go Delete; pulumi-kubernetes#2675). Only a kind cluster
# this stack created is deleted, read from its state (the KindCluster's command), so a lab whose
# first `up` failed half-way goes the same way. Other stacks are destroyed resource by resource,
# in dependency order. The stack file always stays (--preserve-config).
.PHONY: destroy
destroy: ready ## destroy STACK and remove its state (its stack file stays)
	@$(PULUMI_ENV) \
	if ! err="$$($(PULUMI) stack select --stack $(STACK) 2>&1)"; then \
	  if [[ "$$err" == *"no stack named"* ]]; then echo "no stack $(STACK) in $(BACKEND); nothing to destroy"; exit 0; fi; \
	  echo "$$err" >&2; exit 1; fi; \
	if ! name="$$($(PY) -m ops.labs kind-cluster --stack $(STACK))"; then \
	  echo "cannot read the state of stack $(STACK) (PULUMI_CONFIG_PASSPHRASE(_FILE) must be the one it was created with); nothing deleted" >&2; exit 1; fi; \
	if [ -n "$$name" ]; then \
	  if ! clusters="$$(kind get clusters 2>&1)"; then echo "kind get clusters failed (is Docker running?): $$clusters; nothing deleted" >&2; exit 1; fi; \
	  if grep -qx "$$name" <<<"$$clusters"; then echo "deleting kind cluster $$name (created by stack $(STACK))"; kind delete cluster --name "$$name"; \
	  else echo "kind cluster $$name is already gone"; fi; \
	  echo "removing stack $(STACK) and its state: everything in it lived in that cluster"; \
	  $(PULUMI) stack rm --force --yes --preserve-config --stack $(STACK); \
	else \
	  $(PULUMI) destroy --yes --skip-preview --stack $(STACK); \
	  $(PULUMI) stack rm --yes --preserve-config --stack $(STACK); \
	fi

# Teardown runs however the checks end (and its failure fails the target too); the checks read the
# stack's outputs, so they get the same passphrase as `make up`.
.PHONY: e2e
e2e: ## on a machine with Docker: `make up STACK=lab`, scripts/e2e.sh, then always `make destroy`
	@$(MAKE) --no-print-directory doctor STACK=lab
	@trap 'rc=$$?; $(MAKE) --no-print-directory destroy STACK=lab DOCTOR_DONE=1 || rc=1; exit $$rc' EXIT; \
	$(MAKE) --no-print-directory up STACK=lab DOCTOR_DONE=1 YES=1; \
	PULUMI_CONFIG_PASSPHRASE_FILE=$${PULUMI_CONFIG_PASSPHRASE_FILE:-$(PASSPHRASE_FILE)} scripts/e2e.sh lab

# The local control plane (tests/itest/local): the real Pulumi CLI, Kubernetes provider, API server and
# controllers, built from their Go modules once into $${MESH_LOCAL_CACHE:-~/.cache/mesh-platform/local};
# kwok in place of kubelets, stand-in charts and operators. README.md, "Local control plane".
LOCAL_DIR := out/local

.PHONY: local-tools
local-tools: ## build the local control plane's programs from their Go modules (cold: about 20 min; then cached)
	$(PYTHON) -m tests.itest.local.build

.PHONY: local-crds
local-crds: $(VENV)/.dev ## the CRDs each pinned chart installs, from the real chart repositories, into out/local-crds
	$(PY) -m tests.itest.local.charts --out out/local-crds

.PHONY: local-up
local-up: $(VENV)/.dev ## start the local control plane in the background; then: source out/local/env
	$(PY) -m tests.itest.local.controlplane up --dir $(LOCAL_DIR)

.PHONY: local-down
local-down: $(VENV)/.dev ## stop what `make local-up` started, by PID
	$(PY) -m tests.itest.local.controlplane down --dir $(LOCAL_DIR)

.PHONY: itest
itest: $(VENV)/.dev local-tools ## the scenarios on the local control plane with the real CLI: out/itest/report.json
	$(PY) -m pytest -m itest -p no:cacheprovider -q tests/itest

.PHONY: clean
clean: ## remove rendered output and caches (not .venv, not state)
	rm -rf out .pytest_cache .ruff_cache
