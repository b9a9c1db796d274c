// Package audio will own PulseAudio control over its D-Bus protocol
// (module-dbus-protocol): cards, A2DP and HFP/HSP profile switching, default
// devices, volume, and record/playback streams for the microphone test. It
// takes its connection as a parameter. Not built yet: see the issue "Audio".
package audio
