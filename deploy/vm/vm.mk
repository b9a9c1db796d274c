# The virtual board's targets; the top Makefile includes this file.
#
#   make lab-deps   packages, Debian kernel, initramfs, btvirt shim (cached)
#   make test-lab   every lab-tagged test, guest tests run in QEMU
#   make demo       boxagent serving on the virtual board, page on 127.0.0.1:8080
#                   (ARCH=armhf: on the armhf board)
#   make lab-deps-armhf  the armhf board: armmp kernel, its two missing modules,
#                   initramfs, shim, mmdebstrap'd root (cached in
#                   /var/cache/boxagent-lab/armhf)
#   make test-day-armhf  the field engineer's day on the armhf board (make test)
#   make test-lab-armhf  the rest of the lab suite on the armhf board
#
# Packages whose lab tests boot the board: extend LAB_PKGS. They run one
# package at a time (-p 1): two boards on 2 cores only slow each other.

GO  ?= go
BIN ?= bin
# ./bluetooth's virtual-board fixture used to fail about one boot in four
# (hci0's HCI Reset timed out, bluetoothd listed only hci1): the first btvirt
# of a boot made the kernel load and build btvirt's AF_ALG crypto (ecb(aes),
# cmac(aes)) while hci0's Reset waited its 2 s. deploy/vm/guest does that
# before btvirt starts, waits for the kernel's MGMT Index Added of both
# controllers and restarts btvirt, logged, if one still fails (StartBtvirt).
LAB_PKGS    ?= ./deploy/vm/... ./internal/kernelhash ./audio ./network ./wifi ./firmware ./deploy/systemd ./bluetooth
LAB_TIMEOUT ?= 20m

.PHONY: lab-deps lab-deps-armhf test-lab test-lab-armhf test-day-armhf demo

lab-deps:
	deploy/vm/lab-deps.sh

lab-deps-armhf:
	deploy/vm/lab-deps-armhf.sh

# One package at a time (-p 1). A package that fails is run once more, on
# its own, to tell a virtual-board flake under TCG from a failure; the retry
# and the first failure's test and message are in make test's summary (and
# docs/FLAKES.md once investigated), never hidden. Two failures in a row
# fail the run.
REPORT     ?= $(CURDIR)/.cache/test-report
TESTREPORT ?= $(BIN)/testreport
test-lab: lab-deps $(TESTREPORT)
	$(TESTREPORT) run -dir $(REPORT) -stage lab -retry -pkgs "$(LAB_PKGS)" -- \
	  $(GO) test -tags lab -count=1 -p 1 -timeout $(LAB_TIMEOUT)

# The armhf board (LAB_ARCH=armhf): the same harness and guest tests,
# cross-compiled (GOARCH=arm GOARM=7), on Debian's armmp kernel and an
# armhf root. make test runs the day (test-day-armhf); test-lab-armhf the
# rest (docs/SKIPS.md and deploy/vm/README.md say what passes there).
LAB_DAY_PKG       ?= ./deploy/systemd
LAB_ARMHF_PKGS    ?= $(LAB_PKGS)
# (go test's timeout counts the wait in the board queue of a shared machine)
LAB_ARMHF_TIMEOUT ?= 40m
test-day-armhf: lab-deps-armhf $(TESTREPORT)
	LAB_ARCH=armhf $(TESTREPORT) run -dir $(REPORT) -stage lab-day-armhf -retry -pkgs "$(LAB_DAY_PKG)" -- \
	  $(GO) test -tags lab -count=1 -p 1 -run '^TestLabDay$$' -timeout $(LAB_ARMHF_TIMEOUT)

test-lab-armhf: lab-deps-armhf $(TESTREPORT)
	LAB_ARCH=armhf $(TESTREPORT) run -dir $(REPORT) -stage lab-armhf -pkgs "$(LAB_ARMHF_PKGS)" -- \
	  $(GO) test -tags lab -count=1 -p 1 -skip '^TestLabDay$$' -timeout $(LAB_ARMHF_TIMEOUT)

# ARCH=armhf: the agent cross-compiled, on the armhf board.
ARCH ?= amd64
demo: $(if $(filter armhf,$(ARCH)),lab-deps-armhf,lab-deps)
	@if [ ! -f cmd/boxagent/main.go ]; then echo "demo: cmd/boxagent does not exist yet"; exit 1; fi
	$(if $(filter armhf,$(ARCH)),GOARCH=arm GOARM=7) $(GO) build -o $(BIN)/$(if $(filter armhf,$(ARCH)),armhf/)boxagent ./cmd/boxagent
	LAB_ARCH=$(ARCH) $(GO) run ./deploy/vm/cmd/labvm -demo
