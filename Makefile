# microkube: build, run, test and measure a node from a checkout.
# `make up` on a fresh Debian/Ubuntu machine (as root) installs what is needed,
# builds the components and starts a single node; `make test` runs the tests.

SHELL := /bin/bash
PY    := .venv/bin/python
VENV_STAMP := .venv/.installed
export MICROKUBE_ROOT ?= /var/lib/microkube
APT_PACKAGES := iptables ipset conntrack libseccomp-dev pkg-config busybox-static gcc libc6-dev \
                squashfs-tools ethtool socat kmod iproute2 util-linux snapd python3-apt \
                chromium chromium-driver mariadb-server
# xz for the snap people install; the tests accept the faster lzo.
SNAP_COMPRESSION ?= xz

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
	.venv/bin/ruff check microkube tests addons
	.venv/bin/mypy

test-unit: venv
	.venv/bin/pytest -q -rs tests/unit

test-e2e: components
	.venv/bin/pytest -q -rs -m "components or e2e" tests/components tests/e2e

test: deps venv components lint
	$(MAKE) snap SNAP_COMPRESSION=lzo
	# --durations: CI's log then says which tests the run's time went to.
	.venv/bin/pytest -q -rs --durations=25 tests

bench: components snap
	$(PY) -m tests.bench --json bench.json

# The snap: snapcraft.yaml's parts run through craft-parts into build/craft/prime, then
# `snap pack` (Debian's snapd, no daemon needed) writes build/microkube_<version>_amd64.snap.
snap: components
	$(PY) -m microkube.snap build --compression=$(SNAP_COMPRESSION)

clean:
	rm -rf build .venv
