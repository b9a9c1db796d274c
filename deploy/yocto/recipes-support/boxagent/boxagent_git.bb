SUMMARY = "Bluetooth headsets, uplinks and firmware staging for set-top boxes"
DESCRIPTION = "One static Go binary that pairs Bluetooth headsets (A2DP and \
HFP/HSP), brings up Wi-Fi and VLAN uplinks and stages recovery update \
packages on FAT32 USB sticks, with a local control page and a command line."
HOMEPAGE = "https://github.com/boxagent/boxagent"
SECTION = "net"
# No license chosen yet upstream; set LICENSE and LIC_FILES_CHKSUM once the
# project has one.
LICENSE = "CLOSED"

SRC_URI = "git://github.com/boxagent/boxagent.git;protocol=https;branch=main;destsuffix=${GO_SRCURI_DESTSUFFIX}"
# Pin a commit for a release image: the same commit gives the same bytes.
SRCREV = "${AUTOREV}"
PV = "0.1.0+git"

GO_IMPORT = "github.com/boxagent/boxagent"
GO_INSTALL = "${GO_IMPORT}/cmd/boxagent"
GO_LINKSHARED = ""
# The same binary as `make cross`: static, no build id, version stamped.
CGO_ENABLED = "0"
export CGO_ENABLED
GO_EXTRA_LDFLAGS = "-s -w -buildid= -X ${GO_IMPORT}/cmd/boxagent/cli.version=${PV}"

inherit go-mod systemd useradd

# The unit's User= and SupplementaryGroups= must exist.
USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system bluetooth; --system netdev; --system pulse-access"
USERADD_PARAM:${PN} = "--system --user-group --home-dir /var/lib/boxagent --no-create-home --shell /sbin/nologin boxagent"

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
