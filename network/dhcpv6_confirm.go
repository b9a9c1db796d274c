package network

import (
	"context"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/insomniacslk/dhcp/iana"
)

// carrierBack is told by the link watch that the uplink's carrier
// returned: the cable may now lead to another network. It solicits an RA
// at once (the kernel's SLAAC and the agent's RDNSS follow the new
// router) and has the DHCPv6 client check its lease (Confirm) or ask
// again (stateless). A nil runner does nothing.
func (r *ipv6Runner) carrierBack() {
	if r == nil {
		return
	}
	if err := r.raConn.solicit(); err != nil {
		r.log.Info("router solicitation", "err", err)
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// wait waits d, or until the carrier comes back (it says so), or ctx
// ends.
func (r *ipv6Runner) wait(ctx context.Context, d time.Duration) (bool, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-t.C:
		return false, nil
	case <-r.kick:
		return true, nil
	}
}

// confirm asks any server whether the lease of last is still on link
// (RFC 8415 18.2.3): false only when one says NotOnLink; without an
// answer the lease stays (18.2.10.2).
func (r *ipv6Runner) confirm(ctx context.Context, c *nclient6.Client, mods []dhcpv6.Modifier, last *dhcpv6.Message) bool {
	msg, err := dhcpv6.NewMessage(mods...)
	if err != nil {
		return true
	}
	msg.MessageType = dhcpv6.MessageTypeConfirm
	msg.AddOption(dhcpv6.OptElapsedTime(0))
	for _, ia := range last.Options.IANA() {
		msg.AddOption(ia)
	}
	reply, err := c.SendAndRead(ctx, c.RemoteAddr(), msg, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
	if err != nil {
		r.log.Info("dhcpv6 confirm: no answer: the lease stays", "err", err)
		return true
	}
	if st := reply.Options.Status(); st != nil && st.StatusCode == iana.StatusNotOnLink {
		return false
	}
	r.emit("dhcpv6", "lease confirmed on link")
	return true
}

// release gives the lease of last back (RFC 8415 18.2.7) when the runner
// stops for good (the uplink left the config or changed): the server may
// hand the address out again at once. It waits a second at most for the
// answer; the addresses leave the link either way.
func (r *ipv6Runner) release(c *nclient6.Client, mods []dhcpv6.Modifier, last *dhcpv6.Message) {
	if !r.releasing.Load() {
		return
	}
	msg, err := dhcpv6.NewMessage(mods...)
	if err != nil {
		return
	}
	msg.MessageType = dhcpv6.MessageTypeRelease
	msg.AddOption(dhcpv6.OptElapsedTime(0))
	if sid := last.Options.ServerID(); sid != nil {
		msg.AddOption(dhcpv6.OptServerID(sid))
	}
	for _, ia := range last.Options.IANA() {
		msg.AddOption(ia)
	}
	for _, pd := range last.Options.IAPD() {
		msg.AddOption(pd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.SendAndRead(ctx, c.RemoteAddr(), msg, nclient6.IsMessageType(dhcpv6.MessageTypeReply)); err != nil {
		r.log.Info("dhcpv6 release: no answer", "err", err)
	}
}
