package network

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// InNamespace runs fn on a fresh locked thread inside ns (or here, for
// netns.None()). Sockets fn opens belong to ns for their life, whichever
// thread uses them later: the uplinks' DHCP clients and watches open
// theirs with it, and so does the setup hotspot's DHCP server (package
// wifi).
func InNamespace(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	return onThreadIn(ns, fn)
}

// onThreadIn runs fn on an OS thread of its own inside ns (in the agent's
// own namespace when ns is not open) and returns fn's error. The thread is
// given back to the runtime only once it is back in the namespace it came
// from. A thread left in ns would end with its goroutine, except the
// process's main thread, which the runtime parks instead of ending; and
// /proc/PID/ns/net is the main thread's, so the whole process would then
// seem to live in ns: `ip netns pids` names it, and a namespace clean-up
// that kills those pids kills the agent.
func onThreadIn(ns netns.NsHandle, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if !ns.IsOpen() {
			defer runtime.UnlockOSThread()
			done <- fn()
			return
		}
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("cannot read this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("cannot enter the network namespace: %w", err)
			return
		}
		err = fn()
		// Could not go back: stay locked, so the thread ends with this
		// goroutine instead of running others in ns.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}
