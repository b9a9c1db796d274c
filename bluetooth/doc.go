// Package bluetooth drives BlueZ over D-Bus: a live model of adapters and
// devices kept current by BlueZ's own signals, discovery with a BR/EDR
// filter, the pairing agent and its policy, pair/trust/connect/remove, and
// auto-reconnect of known headsets.
//
// It takes its system bus connection as a parameter (made with
// dbus.WithSignalHandler(dbus.NewSequentialSignalHandler()) so signals
// arrive in order) and knows nothing of HTTP, flags or the journal: it
// returns typed errors that keep BlueZ's own words and reports what happens
// as Events, which the daemon turns into API events and journal records.
//
// Only github.com/godbus/dbus/v5 is used: the handful of BlueZ calls and the
// Agent1 export are a few lines each, and this keeps away from property
// watchers that spawn goroutines per object and decoders that choke on
// properties newer BlueZ versions add (Bonded in 5.66).
package bluetooth
