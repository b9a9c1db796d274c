package vm

import (
	"os"
	"testing"
)

// Environment set by the guest's init (deploy/vm/init.sh) for everything it
// runs.
const (
	EnvGuest   = "LAB_GUEST"   // "1" inside the virtual board
	EnvResults = "LAB_RESULTS" // the results share, the same path as on the host
	// Knobs Run always passes.
	EnvKernelVersion = "LAB_KERNEL_VERSION" // the guest kernel's version
	EnvBtvirtShim    = "LAB_BTVIRT_SHIM"    // path of btvirt-sco-shim.so (LD_PRELOAD for btvirt)
)

// InGuest reports whether this process runs inside the virtual board.
func InGuest() bool { return os.Getenv(EnvGuest) == "1" }

// RequireGuest skips the test unless it runs inside the virtual board.
// Guest-side tests carry the build tag "lab" and call it first; the host
// runs them in the guest with RunGoTests.
func RequireGuest(t testing.TB) {
	t.Helper()
	if !InGuest() {
		t.Skip("needs the virtual board (a Debian kernel in QEMU): run with make test-lab")
	}
}

// ResultsDir returns the results share inside the guest ("" on the host).
func ResultsDir() string {
	if !InGuest() {
		return ""
	}
	return os.Getenv(EnvResults)
}
