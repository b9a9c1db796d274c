package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/vishvananda/netlink"
)

// The run lives in a network namespace of its own, lo its only link, and
// with a /run of its own, as the agent does on a box. In a shared
// machine's namespace every other program's link changes reach the
// agent's link watch, and so do other netlink subscribers' dump requests
// (vishvananda/netlink sends its ListExisting request to the multicast
// group); and the agent watches /run by inotify for a sound server's
// socket (audio.SocketWatch), so every file other programs make there
// wakes it. Those woke the idle agent, and not the floor, which watches
// nothing.

// envOwnNetns marks the run already in its namespace.
const envOwnNetns = "BOXAGENT_BENCH_NETNS"

// ownNetns runs the bench again in a new network namespace with lo up,
// and exits with its status; in that run (or when not root, which cannot
// make one) it returns nil at once.
func ownNetns() error {
	switch v := os.Getenv(envOwnNetns); {
	case v == "in":
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			return fmt.Errorf("cannot bring up lo in the bench's namespace: %w", err)
		}
		// Mounts made here stay here.
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("cannot make the bench's mounts private: %w", err)
		}
		if err := syscall.Mount("tmpfs", "/run", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755,size=16m"); err != nil {
			return fmt.Errorf("cannot give the bench a /run of its own: %w", err)
		}
		return nil
	case v != "" || os.Geteuid() != 0:
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envOwnNetns+"=in")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGTERM}
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		return fmt.Errorf("cannot run in a network namespace of its own: %w", err)
	}
	os.Exit(0)
	return nil
}

// netnsNote says where the run's processes lived, for the report's head.
func netnsNote() string {
	if os.Getenv(envOwnNetns) == "in" {
		return "The agent, the floor and their peers ran in a network namespace of the bench's own (`lo` its only link) with a `/run` of its own, as on a box: on a shared machine other programs' link changes and netlink dump requests reach the agent's link watch, and the files they make in `/run` its watch for a sound server's socket (never the floor's: it watches nothing)."
	}
	return "The run was in the machine's own network namespace and `/run` (the bench makes its own only as root): other programs' link changes, netlink dump requests and files made in `/run` may wake the agent."
}
