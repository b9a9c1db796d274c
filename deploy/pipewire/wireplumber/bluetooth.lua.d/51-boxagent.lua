-- boxagent's WirePlumber overrides for Bluetooth headsets on a box
-- without a user session (boxagent-wireplumber.service;
-- deploy/pipewire/README.md).
--
-- No logind seat to follow: with logind on, the bluez monitor waits for
-- an active seat of WirePlumber's user, which a system service never has,
-- and headsets get no card.
bluez_monitor.properties["with-logind"] = false
