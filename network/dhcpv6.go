package network

import (
	"context"
	"net/netip"
	"time"
)

// DHCPv6Lease is what a DHCPv6 server gave an uplink.
type DHCPv6Lease struct {
	Server    string       `json:"server"` // its DUID, hex
	Addresses []DHCPv6Addr `json:"addresses,omitempty"`
	// Prefix is the delegated prefix (IA_PD), invalid without one.
	Prefix          netip.Prefix  `json:"prefix,omitzero"`
	PrefixPreferred time.Duration `json:"prefix_preferred,omitempty"`
	PrefixValid     time.Duration `json:"prefix_valid,omitempty"`
	DNS             []netip.Addr  `json:"dns,omitempty"`
	Search          []string      `json:"search,omitempty"`
	T1              time.Duration `json:"t1,omitempty"`
	T2              time.Duration `json:"t2,omitempty"`
	Acquired        time.Time     `json:"acquired"`
}

// DHCPv6Addr is one address of an IA_NA with its lifetimes.
type DHCPv6Addr struct {
	Address   netip.Addr    `json:"address"`
	Preferred time.Duration `json:"preferred"`
	Valid     time.Duration `json:"valid"`
}

// runDHCPv6 runs the uplink's DHCPv6 client until ctx ends.
func (r *ipv6Runner) runDHCPv6(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// removeLease takes the lease's addresses off the link.
func (r *ipv6Runner) removeLease(l *DHCPv6Lease) {}
