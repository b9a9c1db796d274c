# .deb packages (included by the Makefile).
#
#   make deb        bin/boxagent_<version>_{armhf,arm64,amd64,riscv64}.deb
#   make deb-check  builds them twice, compares the hashes, runs lintian
#
# SOURCE_DATE_EPOCH is the commit's time, so two builds of one commit are
# byte-identical (see deploy/deb/README.md).

DEB_ARCHES := armhf:arm arm64:arm64 amd64:amd64 riscv64:riscv64
DEB_EPOCH  ?= $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null))

.PHONY: deb deb-check
deb: cross
	@[ -n "$(DEB_EPOCH)" ] || { echo "deb: no commit time: set SOURCE_DATE_EPOCH"; exit 1; }
	@for a in $(DEB_ARCHES); do \
	  VERSION='$(VERSION)' LDFLAGS='$(LDFLAGS)' BIN='$(BIN)' GO='$(GO)' SOURCE_DATE_EPOCH=$(DEB_EPOCH) \
	    deploy/deb/build.sh $${a%%:*} $${a#*:} || exit 1; \
	done

deb-check:
	@MAKE='$(MAKE)' DEB_CHECK_WARM=$(DEB_CHECK_WARM) deploy/deb/check.sh
