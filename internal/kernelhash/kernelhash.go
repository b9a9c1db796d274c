// Package kernelhash computes SHA-256 and SHA-1 with the Linux kernel's
// crypto API (AF_ALG) where the kernel offers it, and with Go's crypto
// packages elsewhere.
//
// Why the kernel: the kernel picks its best implementation for the board,
// a SoC crypto engine (Rockchip, Allwinner, Marvell) or the CPU's
// instructions (NEON, ARMv8 SHA-2), while Go's SHA-256 for linux/arm
// (GOARM=7) is generic code. The firmware stager hashes whole update
// packages read back from a USB stick, where the hashing is what the user
// waits for. The kernel's answer is checked against Go's on known inputs
// before it is trusted: a crypto engine driver that computes wrong sums
// (it happens) makes this package use Go's instead.
package kernelhash

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// ErrWrongSum is why the kernel is not used when its sums differed from
// Go's in the self-check: a broken driver, usually a crypto engine's.
var ErrWrongSum = errors.New("the kernel's sums differ from Go's")

// Hash is a hash.Hash computed by the kernel or by Go. Close releases the
// kernel's socket; a Hash is not safe for concurrent use.
type Hash struct {
	hash.Hash
	closer func() error
}

// Close releases the kernel's socket; for a Go hash it does nothing.
// The Hash is unusable after Close.
func (h *Hash) Close() error {
	if h.closer == nil {
		return nil
	}
	c := h.closer
	h.closer = nil
	return c()
}

// Err is the kernel's error that made the sums wrong (a failed write or
// read on the socket), or nil. A caller that names or verifies anything
// by a sum checks it after Sum.
func (h *Hash) Err() error {
	if e, ok := h.Hash.(interface{ err() error }); ok {
		return e.err()
	}
	return nil
}

// New returns a new hash for alg (crypto.SHA256 or crypto.SHA1), the
// kernel's when its self-check passed, else Go's. It panics on another
// alg, as crypto.Hash.New does for one not linked in.
func New(alg crypto.Hash) *Hash {
	if b := backendFor(alg); b.kernel {
		if h, err := newKernel(alg); err == nil {
			return h
		}
	}
	return &Hash{Hash: goNew(alg)}
}

// Backend says what computes alg in this process: "kernel <driver>" or
// "go", and when it is Go although the platform has AF_ALG, why.
func Backend(alg crypto.Hash) (name string, why error) {
	b := backendFor(alg)
	if b.kernel {
		return strings.TrimSpace("kernel " + b.driver), nil
	}
	return "go", b.why
}

func goNew(alg crypto.Hash) hash.Hash {
	switch alg {
	case crypto.SHA256:
		return sha256.New()
	case crypto.SHA1:
		return sha1.New()
	}
	panic(fmt.Sprintf("kernelhash: %v is not supported", alg))
}

// backend is what the probe of an algorithm found.
type backend struct {
	kernel bool
	driver string // the kernel's driver, e.g. sha256-ce, when known
	why    error  // why not the kernel
}

var (
	probeMu sync.Mutex
	probed  = map[crypto.Hash]backend{}
)

// backendFor probes alg once per process: a socket, then the self-check.
func backendFor(alg crypto.Hash) backend {
	goNew(alg) // panics on an unsupported alg before anything else
	probeMu.Lock()
	defer probeMu.Unlock()
	b, ok := probed[alg]
	if !ok {
		b = probe(alg)
		probed[alg] = b
	}
	return b
}

// selfCheck compares the sums of the hashes newHash makes (the kernel's)
// with Go's on inputs that cross block and page boundaries, split over
// several writes, with a Sum after each.
func selfCheck(alg crypto.Hash, newHash func(crypto.Hash) (*Hash, error)) error {
	h, err := newHash(alg)
	if err != nil {
		return err
	}
	defer h.Close()
	buf := make([]byte, 3<<12+77)
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	ref := goNew(alg)
	for _, n := range []int{0, 3, 64, 1000, len(buf)} {
		h.Reset()
		ref.Reset()
		for _, part := range [][]byte{buf[:n/3], buf[n/3 : n/2], buf[n/2 : n]} {
			h.Write(part)
			ref.Write(part)
			if got, want := h.Sum(nil), ref.Sum(nil); string(got) != string(want) {
				return fmt.Errorf("%w: %v of %d bytes is %x, Go's %x", ErrWrongSum, alg, n, got, want)
			}
		}
	}
	return h.Err()
}
