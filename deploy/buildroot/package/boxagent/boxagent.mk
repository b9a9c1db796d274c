################################################################################
#
# boxagent
#
################################################################################

BOXAGENT_VERSION = 0.1.0
BOXAGENT_SITE = $(call github,boxagent,boxagent,v$(BOXAGENT_VERSION))
# No license chosen yet upstream; set this once the project has one.
BOXAGENT_LICENSE = PROPRIETARY
BOXAGENT_GOMOD = github.com/boxagent/boxagent
BOXAGENT_BUILD_TARGETS = cmd/boxagent
BOXAGENT_INSTALL_BINS = boxagent
# The same bytes as `make cross`: static, no build id, version stamped.
BOXAGENT_GO_ENV = CGO_ENABLED=0
BOXAGENT_LDFLAGS = -s -w -buildid= \
	-X github.com/boxagent/boxagent/cmd/boxagent/cli.version=$(BOXAGENT_VERSION)

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
