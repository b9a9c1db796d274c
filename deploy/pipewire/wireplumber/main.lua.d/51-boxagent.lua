-- boxagent's WirePlumber overrides for a box without a user session
-- (boxagent-wireplumber.service; deploy/pipewire/README.md).
--
-- Without a session bus WirePlumber 0.4.13 exits (status 70, "Cannot
-- autolaunch D-Bus without X11 $DISPLAY") unless both of these are off:
-- ALSA device reservation (org.freedesktop.ReserveDevice1 on the session
-- bus) and the flatpak portal's access control.
alsa_monitor.properties["alsa.reserve"] = false
default_access.properties["enable-flatpak-portal"] = false
