SUMMARY = "Bluetooth headsets, uplinks and firmware staging for set-top boxes"
DESCRIPTION = "One static Go binary that pairs Bluetooth headsets (A2DP and \
HFP/HSP), brings up Wi-Fi and VLAN uplinks and stages recovery update \
packages on FAT32 USB sticks, with a local control page and a command line."
HOMEPAGE = "https://github.com/boxagent/boxagent"
SECTION = "net"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://src/${GO_IMPORT}/LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"
SRC_URI = "git://github.com/boxagent/boxagent.git;protocol=https;branch=main;destsuffix=${GO_SRCURI_DESTSUFFIX}"
# A commit, not a tag (no release yet): `deploy/recipes-check.sh pin <commit>`
# sets it with the version stamp, the .inc files and the Buildroot package;
# a release pins its tagged commit the same way.
SRCREV = "7d38daf8ac4da8102f2ba501df19ad528c4c8f8e"
PV = "0.1.0+git"

# The Go modules, as go-mod-update-modules.bbclass writes them (here by
# deploy/recipes-check.sh pin): their licences (appended to LICENSE and
# LIC_FILES_CHKSUM) and one gomod:// SRC_URI per module, so do_fetch gets
# them and do_compile, which has no network, finds them in GOMODCACHE.
require ${BPN}-licenses.inc
require ${BPN}-go-mods.inc

# What `boxagent --version` prints: deploy/version.sh of SRCREV.
BOXAGENT_VERSION_STAMP = "0.1.0~git20261206.054757.7d38daf8ac4d"

GO_IMPORT = "github.com/boxagent/boxagent"
GO_INSTALL = "${GO_IMPORT}/cmd/boxagent"
# The same binary as `make cross`: static, no build id, version stamped.
# go.bbclass adds -buildmode=pie on all but mips and riscv32, which needs
# external (cgo) linking on arm and riscv64 ("requires external (cgo)
# linking, but cgo is not enabled") and on arm64/x86-64 makes a dynamically
# linked PIE: removed, like -linkshared. The -I loader and -r rpath that
# go.bbclass still passes do nothing in a static link.
CGO_ENABLED = "0"
export CGO_ENABLED
GO_LINKSHARED = ""
GOBUILDFLAGS:remove = "-buildmode=pie"
# As `make cross` (GOFLAGS in the Makefile): the page never speaks HTTP/2,
# and leaving it out saves ~0.5 MB.
GOBUILDFLAGS:append = " -tags=nethttpomithttp2"
GO_EXTRA_LDFLAGS = "-s -w -buildid= -X ${GO_IMPORT}/cmd/boxagent/cli.version=${BOXAGENT_VERSION_STAMP}"
# go.mod says `go 1.26.0` (Yocto 6.0 "wrynose" ships Go 1.26) and `toolchain
# go1.26.8`: without this, go would try to download that toolchain in
# do_compile, which has no network.
export GOTOOLCHAIN = "local"

inherit go-mod systemd useradd

# The architectures `make test-artifacts` replays this build for (32-bit ARM
# as armv7a/armv7ve, GOARM=7).
COMPATIBLE_HOST = "(arm|aarch64|x86_64|riscv64|mipsel).*-linux.*"
# mipsel: softfloat whatever the tune, like `make cross` (it runs with or
# without an FPU). Otherwise the cross go wrapper takes the tune's
# (hardfloat for fpu-hard tunes): go.bbclass exports GOMIPS only under the
# "mips" override. Go reads GOMIPS for mips and mipsle only.
export GOMIPS = "softfloat"

# The unit's User= and SupplementaryGroups= must exist. The user is a
# member of pulse-access in /etc/group too: the system PulseAudio's
# auth-group check reads the member list, not the unit's groups.
USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system bluetooth; --system netdev; --system pulse-access"
USERADD_PARAM:${PN} = "--system --user-group --groups pulse-access --home-dir /var/lib/boxagent --no-create-home --shell /sbin/nologin boxagent"

SYSTEMD_SERVICE:${PN} = "boxagent.service boxagent-firstboot.service"
SYSTEMD_AUTO_ENABLE = "enable"

do_install:append() {
	# The config folder belongs to the agent: systemd's
	# ConfigurationDirectory= would create it root-owned 0700.
	install -d -m 0700 -o boxagent -g boxagent ${D}${sysconfdir}/boxagent
	install -d ${D}${systemd_system_unitdir}
	install -m 0644 ${S}/src/${GO_IMPORT}/deploy/systemd/boxagent.service ${D}${systemd_system_unitdir}/
	install -m 0644 ${S}/src/${GO_IMPORT}/deploy/systemd/boxagent-firstboot.service ${D}${systemd_system_unitdir}/
	install -d ${D}${docdir}/${BPN}/examples
	install -m 0644 ${S}/src/${GO_IMPORT}/deploy/deb/examples/config.toml ${D}${docdir}/${BPN}/examples/
	install -m 0644 ${S}/src/${GO_IMPORT}/deploy/deb/examples/provision.toml ${D}${docdir}/${BPN}/examples/
}

RRECOMMENDS:${PN} = "bluez5 dbus wpa-supplicant"
# Go binaries are stripped by the linker (-s -w) and carry no GNU hash.
INSANE_SKIP:${PN} += "already-stripped ldflags"
