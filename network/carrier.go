package network

import (
	"context"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// WatchCarrier calls fn with the carrier (see carrierUp) of the link with index ifindex
// in ns (netns.None() for the agent's own): once with the state now,
// then at each change, until ctx ends. It follows a netlink
// subscription; after a socket error (ENOBUFS: messages were lost) it
// subscribes again and lists the links anew, so no change goes unseen.
// fn is called from WatchCarrier's goroutine. It returns ctx's error, or
// why it could not subscribe.
func WatchCarrier(ctx context.Context, ns netns.NsHandle, ifindex int, fn func(up bool)) error {
	last, known := false, false
	for {
		updates := make(chan netlink.LinkUpdate, 64)
		done := make(chan struct{})
		failed := make(chan error, 1)
		opts := netlink.LinkSubscribeOptions{
			ErrorCallback: func(err error) {
				select {
				case failed <- err:
				default:
				}
			},
		}
		// The subscription's socket is opened inside ns by a thread of
		// its own, rather than by netlink's switch-and-restore of ours.
		err := InNamespace(ns, func() error { return netlink.LinkSubscribeWithOptions(updates, done, opts) })
		if err != nil {
			return fmt.Errorf("cannot subscribe to link changes: %w", err)
		}
		err = func() error {
			// Closing done ends the subscription, which closes updates;
			// draining it lets its goroutine finish.
			defer func() {
				close(done)
				for range updates {
				}
			}()
			see := func(u netlink.LinkUpdate) {
				if int(u.Index) != ifindex {
					return
				}
				up := carrierUp(u.Attrs())
				if !known || up != last {
					last, known = up, true
					fn(up)
				}
			}
			now, err := existingLinks(ns)
			if errors.Is(err, netlink.ErrDumpInterrupted) {
				return nil // the links changed under the listing: again
			}
			if err != nil {
				return fmt.Errorf("cannot list the links: %w", err)
			}
			for _, u := range now {
				see(u)
			}
			for {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-failed:
					return nil
				case u, ok := <-updates:
					if !ok {
						return nil
					}
					see(u)
				}
			}
		}()
		if err != nil {
			return err
		}
	}
}

// carrierUp says whether a link can carry packets now. The operational
// state turns up only once the kernel has activated the link's queue
// (IFF_LOWER_UP comes earlier, when a packet sent may still be dropped);
// a driver without operational states reports "unknown".
func carrierUp(a *netlink.LinkAttrs) bool {
	switch a.OperState {
	case netlink.OperUp:
		return true
	case netlink.OperUnknown:
		return a.RawFlags&unix.IFF_LOWER_UP != 0
	}
	return false
}
