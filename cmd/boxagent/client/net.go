package client

import (
	"context"
	"net/url"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/network"
)

// Net returns the wired uplinks with their state (leases with their
// times, options sent, PPPoE sessions) and the kernel's links,
// addresses and routes.
func (c *Client) Net(ctx context.Context) (network.View, error) {
	return get[network.View](ctx, c, "/api/v1/net")
}

// NetApply asks the daemon to apply the [network] table again; the
// operation's result is a network.ApplyResult.
func (c *Client) NetApply(ctx context.Context) (network.ApplyResult, journal.Operation, error) {
	return result[network.ApplyResult](c.postOperation(ctx, "/api/v1/net/apply", struct{}{}))
}

// NetRenew asks the DHCP client of link to renew its lease now.
func (c *Client) NetRenew(ctx context.Context, link string) (apitype.NetRenewResult, journal.Operation, error) {
	return result[apitype.NetRenewResult](c.postOperation(ctx, "/api/v1/net/renew", apitype.NetRenewRequest{Link: link}))
}

// NetUplinkAdd adds an uplink to the daemon's config file and applies
// it; the operation's result holds the reload's result.
func (c *Client) NetUplinkAdd(ctx context.Context, u network.Uplink) (apitype.NetEditResult, journal.Operation, error) {
	return result[apitype.NetEditResult](c.postOperation(ctx, "/api/v1/net/uplinks", u))
}

// NetUplinkDel removes the uplink of link name from the daemon's config
// file and applies the rest.
func (c *Client) NetUplinkDel(ctx context.Context, name string) (apitype.NetEditResult, journal.Operation, error) {
	return result[apitype.NetEditResult](c.callOperation(ctx, "DELETE", "/api/v1/net/uplinks/"+url.PathEscape(name), nil))
}
