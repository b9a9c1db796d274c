package daemon

import (
	"context"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/network"
)

// domain is one part of the agent (bluetooth, audio, network, firmware),
// wired in its own file of this package and listed in (*agent).domains.
// The domain packages themselves know nothing of this interface.
type domain interface {
	// Name is the subsystem's name in status: "bluetooth", "audio", …
	Name() string
	// Register adds the domain's API calls and error mappers.
	Register(api *localapi.Server)
	// Start connects to the domain's daemons and follows their signals
	// until ctx ends. An error leaves the agent running with the domain
	// reported as failed or absent.
	Start(ctx context.Context) error
	// Health is the domain's line in status.
	Health() apitype.Subsystem
	// Stop releases what Start took; it is called once, at shutdown.
	Stop()
}

// reconfigurer is a domain that applies a reloaded config.
type reconfigurer interface {
	Reconfigure(ctx context.Context, old, cfg *config.Config) (notes []string, err error)
}

// domains lists the built domains. Add one line per domain.
func (a *agent) buildDomains() []domain {
	// One resolv.conf for the wired uplinks' and the Wi-Fi link's DNS
	// servers, merged by route metric: it exists whether or not any
	// wired uplink is configured.
	dns := network.NewResolvConf(a.paths.Own("/run/boxagent/resolv.conf"))
	wifi, wired := newWiFiDomain(a), newNetworkDomain(a)
	wifi.dns, wired.dns = dns, dns
	wired.wifi = wifi // net show lists the Wi-Fi link too
	bt, snd := newBluetoothDomain(a), newAudioDomain(a)
	snd.bt = bt // a call on a headset connects its voice profile through BlueZ
	return []domain{
		bt,
		wifi,
		snd,
		wired,
		newFirmwareDomain(a),
		newFleetDomain(a),
	}
}
