// Package audio drives the box's sound server for boxagent: cards and
// their profiles (A2DP "music", HFP/HSP "call", "off"), sinks and
// sources, the fallback (default) devices, volume and mute; and a
// play-and-record test that proves a sink plays and a source (a headset
// microphone) records.
//
// Two backends implement one interface (Backend), chosen by what runs:
//
//   - PulseAudio (Client): its own D-Bus protocol (module-dbus-protocol)
//     on its peer-to-peer socket, kept current by PulseAudio's signals.
//     Address finds where it listens; Dial opens the connection the way
//     PulseAudio wants it: no Hello, never an empty destination header.
//   - PipeWire (PipeWireClient): pipewire-pulse's native Pulse protocol
//     (github.com/jfreymuth/pulse/proto, pure Go), kept current by the
//     protocol's subscription events. pipewire-pulse has no D-Bus
//     protocol; the native commands cover everything the agent does, so
//     no PipeWire tool (wpctl, pw-dump) is needed on the box.
//
// The modes are one piece of logic over both (setMode), with both stacks'
// profile names. The play-and-record test streams over the native
// protocol on both (pure Go, no child processes).
//
// The package takes its connection as a parameter (New, NewPipeWire) and
// knows nothing of HTTP, flags or the journal.
package audio
