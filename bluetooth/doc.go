// Package bluetooth will own BlueZ over D-Bus: adapters, discovery, the
// pairing agent, headset connection and auto-reconnect. It takes its system
// bus connection as a parameter and knows nothing of HTTP, flags or the
// journal. Not built yet: see the issue "Bluetooth".
package bluetooth
