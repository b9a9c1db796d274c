# boxagent — build, test, cross-compile, benchmark.
#
#   make demo   the agent on the virtual board, its page on localhost:8080
#   make test   installs what it needs on a fresh Debian machine, runs every test

SHELL := /bin/bash
GO ?= go
export CGO_ENABLED := 0
export GOFLAGS := -trimpath -buildvcs=false

# Same source, same bytes: no VCS stamp, no build id, no paths; the version
# comes from the VERSION file and the commit's time and hash (not the clock):
# 0.1.0~git<YYYYMMDD.HHMMSS>.<commit>, see deploy/version.sh.
VERSION ?= $(shell deploy/version.sh)
LDFLAGS := -s -w -buildid= -X github.com/boxagent/boxagent/cmd/boxagent/cli.version=$(VERSION)
BIN     := bin

CROSS := linux/arm:7 linux/arm64 linux/amd64 linux/riscv64 linux/mipsle:softfloat

.PHONY: all build test test-unit test-cross lint deps cross repro bench fuzz clean screenshots
all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/boxagent ./cmd/boxagent

# Host packages the tests need (the lab's own list is in deploy/vm).
HOST_PKGS := dbus-daemon qemu-user-static chromium openssl
deps:
	@missing=""; for p in $(HOST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(GO) mod download

test: deps lab-deps lint test-unit test-cross test-lab

test-unit:
	$(GO) test -count=1 -timeout 10m ./...

# The arm (GOARMv7) and arm64 builds' unit tests under qemu-user. Tests that
# start processes or need root are skipped with -short.
test-cross:
	GOARCH=arm GOARM=7 $(GO) test -count=1 -short -exec qemu-arm-static ./...
	GOARCH=arm64 $(GO) test -count=1 -short -exec qemu-aarch64-static ./...

STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>&1); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	@if [ ! -x $(STATICCHECK) ]; then CGO_ENABLED=1 GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2 || echo "staticcheck not installable; skipped"; fi
	@if [ -x $(STATICCHECK) ]; then $(STATICCHECK) ./...; fi

cross:
	@mkdir -p $(BIN)
	@for t in $(CROSS); do \
	  os=$${t%%/*}; rest=$${t#*/}; arch=$${rest%%:*}; var=$${rest#*:}; [ "$$var" = "$$rest" ] && var=""; \
	  env=""; [ $$arch = arm ] && env="GOARM=$$var"; [ $$arch = mipsle ] && env="GOMIPS=$$var"; \
	  out=$(BIN)/boxagent-$$os-$$arch; \
	  env GOOS=$$os GOARCH=$$arch $$env $(GO) build -ldflags '$(LDFLAGS)' -o $$out ./cmd/boxagent || exit 1; \
	  printf '%-32s %8d bytes\n' $$out $$(stat -c %s $$out); \
	done

# Build linux/arm twice from copies of the tree in two different folders,
# the second with an empty build cache so nothing is shared; the hashes
# must match.
repro:
	@set -e; a=$$(mktemp -d /tmp/boxagent-repro-a.XXXX); b=$$(mktemp -d /tmp/boxagent-repro-bb.XXXX); \
	for d in $$a $$b; do \
	  git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C $$d; \
	done; \
	(cd $$a && GOOS=linux GOARCH=arm GOARM=7 $(GO) build -ldflags '$(LDFLAGS)' -o boxagent ./cmd/boxagent); \
	(cd $$b && GOCACHE=$$b/.gocache GOOS=linux GOARCH=arm GOARM=7 $(GO) build -ldflags '$(LDFLAGS)' -o boxagent ./cmd/boxagent); \
	ha=$$(sha256sum $$a/boxagent | cut -d' ' -f1); hb=$$(sha256sum $$b/boxagent | cut -d' ' -f1); \
	echo "$$ha  $$a/boxagent"; echo "$$hb  $$b/boxagent"; chmod -R u+w $$b; rm -rf $$a $$b; \
	if [ "$$ha" != "$$hb" ]; then echo "repro: the two builds differ"; exit 1; fi; echo "repro: identical"

bench: build cross
	$(GO) run ./cmd/boxagent-bench -bin $(BIN)/boxagent -cross-dir $(BIN) -out docs/BENCHMARKS.md -append docs/benchmarks-lab.md

# The browser test saves each page at phone and large-screen sizes.
screenshots:
	@dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends fonts-wqy-microhei
	BOXAGENT_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run TestBrowser ./cmd/boxagent/cli

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./cmd/boxagent/config

clean:
	rm -rf $(BIN)

-include deploy/vm/vm.mk
-include deploy/deb/deb.mk
-include deploy/artifacts.mk
