#!/bin/sh
# Syntax checks of the Buildroot package without Buildroot (which this
# machine cannot run): Config.in through kconfiglib with the two symbols it
# depends on stubbed, boxagent.mk through GNU make with the golang-package
# and github macros stubbed, S99boxagent through shellcheck.
# Usage: deploy/buildroot/check.sh  (apt-get install python3-kconfiglib shellcheck;
# Debian's /usr/bin/python3, where that module is)
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/Kconfig" <<KCONFIG
config BR2_PACKAGE_HOST_GO_TARGET_ARCH_SUPPORTS
	def_bool y
config BR2_TOOLCHAIN_HAS_THREADS
	def_bool y
source "$PWD/package/boxagent/Config.in"
KCONFIG
/usr/bin/python3 - "$tmp/Kconfig" <<'PY'
import sys, kconfiglib
k = kconfiglib.Kconfig(sys.argv[1], warn_to_stderr=True)
s = k.syms["BR2_PACKAGE_BOXAGENT"]
assert s.set_value(2), "cannot select BR2_PACKAGE_BOXAGENT"
assert not k.warnings, k.warnings
print("Config.in: parses,", s.name, "=", s.str_value)
PY
cat >"$tmp/check.mk" <<'MK'
github = https://github.com/$(1)/$(2)/archive/$(3)
golang-package =
BOXAGENT_PKGDIR = package/boxagent/
include package/boxagent/boxagent.mk
check:
	@test -n "$(BOXAGENT_VERSION)" && test -n "$(BOXAGENT_GOMOD)" && test -n "$(BOXAGENT_LDFLAGS)"
	@echo 'boxagent.mk: parses; site $(BOXAGENT_SITE)'
	@echo '$(subst $$,$$$$,$(BOXAGENT_USERS))' | awk 'NF < 9 { exit 1 }'
MK
make -s -f "$tmp/check.mk" check TARGET_DIR=/tmp @D=/tmp INSTALL=install
shellcheck -s sh package/boxagent/S99boxagent && echo "S99boxagent: shellcheck clean"
