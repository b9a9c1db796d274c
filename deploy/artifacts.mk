# make test-artifacts: every artifact we ship is built and checked
# (included by the Makefile):
#   cross          the five binaries (linux arm/GOARM=7, arm64, amd64, riscv64,
#                  mipsle/softfloat)
#   repro          linux/arm twice, the second with an empty build cache
#   deb-check      the four .debs twice, identical, lintian clean, installed
#   recipes-check  the Buildroot package and the Yocto recipe, their `go`
#                  builds replayed for each architecture (deploy/recipes-check.sh)
#   licenses-check deploy/deb/copyright against go.mod and the modules'
#                  licence files; reuse lint (every file under Apache-2.0)
#   version-check  the .deb version of HEAD sorts above that of HEAD~1
# What it needs is installed by `make deps` (deploy/test-packages).

.PHONY: test-artifacts artifact-deps recipes-check licenses-check version-check
test-artifacts: export DEB_CHECK_WARM := 1
test-artifacts: artifact-deps licenses-check version-check cross repro deb-check recipes-check
	@echo "test-artifacts: every shipped artifact built and checked"

# Its packages (lintian, reuse, unzip, file) are in deploy/test-packages,
# the one list make deps installs.
artifact-deps: deps

recipes-check:
	@GO='$(GO)' deploy/recipes-check.sh

licenses-check:
	@GO='$(GO)' deploy/licenses.sh check
	@out=$$(reuse lint 2>&1) || { echo "$$out"; exit 1; }; \
	  echo "$$out" | grep -E '^\* Files with (copyright|license)' | sed 's/^\* /reuse: /'

# Two builds of two commits: the later one's version must sort higher.
version-check:
	@git rev-parse -q --verify HEAD~1 >/dev/null || { echo "version-check: HEAD has no parent here (a shallow clone?)"; exit 1; }
	@a=$$(deploy/version.sh HEAD~1); b=$$(deploy/version.sh HEAD); \
	  dpkg --compare-versions "$$a" lt "$$b" || { echo "version-check: $$b (HEAD) does not sort above $$a (HEAD~1)"; exit 1; }; \
	  echo "version-check: $$a < $$b (dpkg --compare-versions)"
