# microkube: build, run, test and measure a node from a checkout.
# `make up` on a fresh Debian/Ubuntu machine (as root) installs what is needed,
# builds the components and starts a single node; `make test` runs the tests.

SHELL := /bin/bash
PY    := .venv/bin/python
VENV_STAMP := .venv/.installed
export MICROKUBE_ROOT ?= /var/lib/microkube
APT_PACKAGES := iptables conntrack libseccomp-dev pkg-config busybox-static gcc libc6-dev \
                squashfs-tools ethtool socat kmod iproute2 util-linux

.PHONY: up down deps venv components test test-unit test-e2e lint bench snap clean

up: deps venv components
	$(PY) -m microkube start --wait-ready --timeout 180
	@echo "Try: .venv/bin/microkube kubectl get nodes"

down: venv
	$(PY) -m microkube stop

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@command -v go >/dev/null || { echo "Go 1.26 or newer is needed on PATH"; exit 1; }

venv: $(VENV_STAMP)
$(VENV_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

components: deps venv
	$(PY) -m microkube.components build

lint: venv
	.venv/bin/ruff check microkube tests
	.venv/bin/mypy

test-unit: venv
	.venv/bin/pytest -q tests/unit

test-e2e: components
	.venv/bin/pytest -q -m "components or e2e" tests/components tests/e2e

test: deps venv components lint
	.venv/bin/pytest -q tests

bench: components
	$(PY) -m tests.bench --json bench.json

clean:
	rm -rf build .venv
