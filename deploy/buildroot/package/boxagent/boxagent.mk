################################################################################
#
# boxagent
#
################################################################################

# A commit of github.com/boxagent/boxagent, not a tag: the project has no
# release yet. `deploy/recipes-check.sh pin <commit>` sets it, the version
# stamp, the Yocto recipe's SRCREV and boxagent.hash together (a release
# pins the tagged commit the same way); `make test-artifacts` checks that
# they agree and replays the build below for each architecture.
BOXAGENT_VERSION = 7d38daf8ac4da8102f2ba501df19ad528c4c8f8e
# What `boxagent --version` prints: deploy/version.sh of that commit.
BOXAGENT_VERSION_STAMP = 0.1.0~git20261206.054757.7d38daf8ac4d
BOXAGENT_SITE = $(call github,boxagent,boxagent,$(BOXAGENT_VERSION))
BOXAGENT_LICENSE = Apache-2.0 (boxagent), BSD-2-Clause, BSD-3-Clause, MIT (Go modules)
# The Go modules' own licence files, in the vendor/ folder Buildroot's
# download step writes (deploy/deb/copyright lists them by module).
BOXAGENT_LICENSE_FILES = LICENSE \
	vendor/aead.dev/minisign/LICENSE \
	vendor/github.com/coreos/go-systemd/v22/LICENSE \
	vendor/github.com/coreos/go-systemd/v22/NOTICE \
	vendor/github.com/eclipse/paho.mqtt.golang/LICENSE \
	vendor/github.com/godbus/dbus/v5/LICENSE \
	vendor/github.com/gorilla/websocket/LICENSE \
	vendor/github.com/insomniacslk/dhcp/LICENSE \
	vendor/github.com/jfreymuth/pulse/LICENSE \
	vendor/github.com/josharian/native/license \
	vendor/github.com/pelletier/go-toml/v2/LICENSE \
	vendor/github.com/pierrec/lz4/v4/LICENSE \
	vendor/github.com/smallstep/pkcs7/LICENSE \
	vendor/github.com/spf13/pflag/LICENSE \
	vendor/github.com/u-root/uio/LICENSE \
	vendor/github.com/vishvananda/netlink/LICENSE \
	vendor/github.com/vishvananda/netns/LICENSE \
	vendor/go.etcd.io/bbolt/LICENSE \
	vendor/golang.org/x/crypto/LICENSE \
	vendor/golang.org/x/crypto/PATENTS \
	vendor/golang.org/x/net/LICENSE \
	vendor/golang.org/x/net/PATENTS \
	vendor/golang.org/x/sync/LICENSE \
	vendor/golang.org/x/sync/PATENTS \
	vendor/golang.org/x/sys/LICENSE \
	vendor/golang.org/x/sys/PATENTS
BOXAGENT_GOMOD = github.com/boxagent/boxagent
# As `make cross` (GOFLAGS in the Makefile): the page never speaks HTTP/2,
# and leaving it out saves ~0.5 MB.
BOXAGENT_TAGS = nethttpomithttp2
# One target: the infrastructure names the binary after it (boxagent) and
# installs it in /usr/bin (<pkg>_INSTALL_BINS is gone since 2025.11).
BOXAGENT_BUILD_TARGETS = cmd/boxagent
# The same binary as `make cross`: static (no cgo), no build id, version
# stamped. go.mod's `go 1.26.0` needs Buildroot's Go 1.26 (2026.02.1 and later;
# GOTOOLCHAIN=local there, so the toolchain line is not followed).
BOXAGENT_GO_ENV = CGO_ENABLED=0
BOXAGENT_LDFLAGS = -s -w -buildid= \
	-X github.com/boxagent/boxagent/cmd/boxagent/cli.version=$(BOXAGENT_VERSION_STAMP)

# The unit's SupplementaryGroups= must exist: mkusers creates missing
# groups listed here.
define BOXAGENT_USERS
	boxagent -1 boxagent -1 * /var/lib/boxagent - bluetooth,netdev,pulse-access boxagent agent
endef

# The config folder belongs to the agent: systemd's ConfigurationDirectory=
# would create it root-owned, which the agent (User=boxagent) cannot enter.
define BOXAGENT_INSTALL_CONFIG_DIR
	mkdir -p $(TARGET_DIR)/etc/boxagent
endef
BOXAGENT_POST_INSTALL_TARGET_HOOKS += BOXAGENT_INSTALL_CONFIG_DIR

define BOXAGENT_PERMISSIONS
	/etc/boxagent d 700 boxagent boxagent - - - - -
endef

define BOXAGENT_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/deploy/systemd/boxagent.service \
		$(TARGET_DIR)/usr/lib/systemd/system/boxagent.service
	$(INSTALL) -D -m 0644 $(@D)/deploy/systemd/boxagent-firstboot.service \
		$(TARGET_DIR)/usr/lib/systemd/system/boxagent-firstboot.service
endef

define BOXAGENT_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(BOXAGENT_PKGDIR)/S99boxagent \
		$(TARGET_DIR)/etc/init.d/S99boxagent
endef

$(eval $(golang-package))
