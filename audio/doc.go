// Package audio drives PulseAudio for boxagent: cards and their profiles
// (A2DP "music", HFP/HSP "call", "off"), sinks and sources, the fallback
// (default) devices, volume and mute, all over PulseAudio's own D-Bus
// protocol (module-dbus-protocol) on its peer-to-peer socket, kept current
// by PulseAudio's signals; and a play-and-record test over the native
// protocol (github.com/jfreymuth/pulse, pure Go, no child processes) that
// proves a sink plays and a source (a headset microphone) records.
//
// The package takes its connection as a parameter (New) and knows nothing
// of HTTP, flags or the journal. Address finds where PulseAudio listens;
// Dial opens the peer-to-peer connection the way PulseAudio wants it: no
// Hello, never an empty destination header.
package audio
