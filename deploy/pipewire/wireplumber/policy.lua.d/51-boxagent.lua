-- boxagent's WirePlumber policy (boxagent-wireplumber.service;
-- deploy/pipewire/README.md).
--
-- boxagent decides a headset's profile (boxagent audio mode ADDR
-- music|call|off): WirePlumber must not switch it to the headset profile
-- when a program records, and back. PulseAudio's side of the same choice
-- is module-bluetooth-policy auto_switch=0 (deploy/pulseaudio/system.pa).
bluetooth_policy.policy["media-role.use-headset-profile"] = false
