package guest

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// DnsmasqConfig is a DHCP server for one interface.
type DnsmasqConfig struct {
	NS        *Netns // where it runs; nil: the initial namespace
	Interface string // e.g. ve1.45
	// Range is dnsmasq's --dhcp-range, e.g.
	// "10.45.1.100,10.45.1.200,255.255.255.0,1h".
	Range string
	// VendorClass, when set, answers only clients whose option 60
	// contains it (IPoE).
	VendorClass string
	// NoPing skips the ICMP check before a new lease (3 s).
	NoPing bool
	Extra  []string
}

// Dnsmasq is a running dnsmasq.
type Dnsmasq struct {
	*Proc
	Leases string // the lease file
}

// StartDnsmasq starts dnsmasq (DHCP only, no DNS) in the foreground and
// returns once it serves the range.
func StartDnsmasq(t testing.TB, cfg DnsmasqConfig) *Dnsmasq {
	t.Helper()
	d := &Dnsmasq{Leases: filepath.Join(LogDir(t), "dnsmasq.leases")}
	args := []string{"-k", "-u", "root", "--port=0", "--conf-file=/dev/null",
		"--interface=" + cfg.Interface, "--bind-interfaces",
		"--dhcp-range=" + cfg.Range, "--dhcp-leasefile=" + d.Leases,
		"--log-dhcp", "--log-facility=-", "--pid-file="}
	if cfg.VendorClass != "" {
		args = append(args, "--dhcp-vendorclass=set:vc,"+cfg.VendorClass, "--dhcp-ignore=tag:!vc")
	}
	if cfg.NoPing {
		args = append(args, "--no-ping")
	}
	args = append(args, cfg.Extra...)
	cmd := cfg.NS.Command("dnsmasq", args...)
	d.Proc = StartDaemon(t, "dnsmasq", cmd, 20*time.Second, func(ctx context.Context) error {
		// Logged once its DHCP socket is bound.
		return waitLog(ctx, filepath.Join(LogDir(t), "dnsmasq.log"), "DHCP, IP range")
	})
	return d
}
