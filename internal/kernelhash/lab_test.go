//go:build lab

package kernelhash

import (
	"crypto"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/boxagent/boxagent/deploy/vm"
)

// TestLab runs this package's tests in the virtual board, whose Debian
// kernel has AF_ALG (the build machines' has not): there they check the
// kernel's sums against Go's.
func TestLab(t *testing.T) {
	if vm.InGuest() {
		t.Skip("the host side of the lab tests")
	}
	vm.RunGoTests(t, "./internal/kernelhash", vm.Options{Timeout: 4 * time.Minute})
}

// TestGuestKernelHashes makes sure the other tests checked the kernel,
// not the fallback.
func TestGuestKernelHashes(t *testing.T) {
	vm.RequireGuest(t)
	for _, alg := range []crypto.Hash{crypto.SHA256, crypto.SHA1} {
		name, why := Backend(alg)
		if !strings.HasPrefix(name, "kernel sha") {
			t.Errorf("%v: backend %q (%v), want the kernel's", alg, name, why)
		}
		h := New(alg)
		if _, ok := h.Hash.(*kernelSum); !ok {
			t.Errorf("%v: New gave %T", alg, h.Hash)
		}
		h.Close()
	}
}

// TestGuestNoDescriptorLeft: Close releases the sockets, and a Hash
// dropped without Close has them released by the garbage collector.
func TestGuestNoDescriptorLeft(t *testing.T) {
	vm.RequireGuest(t)
	before := openFDs(t)
	for range 50 {
		h := New(crypto.SHA256)
		h.Write([]byte("abc"))
		h.Sum(nil)
		h.Reset()
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		if err := h.Close(); err != nil { // twice is harmless
			t.Fatal(err)
		}
	}
	if n := openFDs(t); n != before {
		t.Fatalf("%d descriptors open after 50 closed hashes, %d before", n, before)
	}
	for range 50 {
		New(crypto.SHA256).Write([]byte("dropped"))
	}
	if n := openFDs(t); n < before+100 {
		t.Fatalf("%d descriptors with 50 live hashes, want %d or more", n, before+100)
	}
	// Cleanups run after a collection, in their own goroutine.
	deadline := time.Now().Add(10 * time.Second)
	for openFDs(t) != before {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors 10 s after the dropped hashes were collected, %d before", openFDs(t), before)
		}
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
