package kernelhash

import (
	"bufio"
	"crypto"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// kernelNames are the kernel's names of the algorithms.
var kernelNames = map[crypto.Hash]string{crypto.SHA256: "sha256", crypto.SHA1: "sha1"}

func probe(alg crypto.Hash) backend {
	if err := selfCheck(alg, newKernel); err != nil {
		return backend{why: err}
	}
	return backend{kernel: true, driver: driver(kernelNames[alg])}
}

// kernelSum is one AF_ALG operation socket: what is written to it is
// hashed in the kernel, straight from the caller's pages.
type kernelSum struct {
	alg  crypto.Hash
	tfm  int // the bound socket, from which operation sockets are accepted
	op   int // the operation socket holding the running state
	dead error
}

func newKernel(alg crypto.Hash) (*Hash, error) {
	name, ok := kernelNames[alg]
	if !ok {
		return nil, fmt.Errorf("the kernel has no %v here", alg)
	}
	tfm, err := unix.Socket(unix.AF_ALG, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_ALG socket: %w", err)
	}
	if err := unix.Bind(tfm, &unix.SockaddrALG{Type: "hash", Name: name}); err != nil {
		unix.Close(tfm)
		return nil, fmt.Errorf("AF_ALG %s: %w", name, err)
	}
	op, err := accept(tfm)
	if err != nil {
		unix.Close(tfm)
		return nil, err
	}
	k := &kernelSum{alg: alg, tfm: tfm, op: op}
	h := &Hash{Hash: k}
	// A Hash dropped without Close must not keep two descriptors for
	// the life of the agent.
	cleanup := runtime.AddCleanup(h, func(k *kernelSum) { k.close() }, k)
	h.closer = func() error {
		cleanup.Stop()
		return k.close()
	}
	return h, nil
}

// accept returns a new operation socket of fd: on a bound socket a fresh
// state, on an operation socket a copy of its state. accept4 with an
// address fails on AF_ALG (the sockets have no name), so it is called bare.
func accept(fd int) (int, error) {
	for {
		nfd, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, unix.SOCK_CLOEXEC, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, fmt.Errorf("AF_ALG accept: %w", errno)
		}
		return int(nfd), nil
	}
}

func (k *kernelSum) close() error {
	if k.op < 0 {
		return nil
	}
	err := errors.Join(unix.Close(k.op), unix.Close(k.tfm))
	k.op, k.tfm = -1, -1
	return err
}

// Write sends p with MSG_MORE: the kernel adds it to the state and waits
// for more. hash.Hash's Write never fails: a kernel error (which the
// self-check makes unlikely) is kept for Err.
func (k *kernelSum) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && k.dead == nil {
		sent, err := unix.SendmsgN(k.op, p, nil, nil, unix.MSG_MORE)
		switch {
		case err == unix.EINTR:
		case err != nil:
			k.dead = fmt.Errorf("kernelhash: %v write: %w", k.alg, err)
		default:
			p = p[sent:]
		}
	}
	return n, nil
}

// Sum reads the sum of a copy of the state, so writing may go on. After
// an error it appends zeros, which match no package: Err says why.
func (k *kernelSum) Sum(b []byte) []byte {
	sum, err := k.sum()
	if err != nil {
		k.dead = err
		sum = make([]byte, k.alg.Size())
	}
	return append(b, sum...)
}

func (k *kernelSum) err() error { return k.dead }

func (k *kernelSum) sum() ([]byte, error) {
	if k.dead != nil {
		return nil, k.dead
	}
	c, err := accept(k.op)
	if err != nil {
		return nil, err
	}
	defer unix.Close(c)
	sum := make([]byte, k.alg.Size())
	for {
		n, err := unix.Read(c, sum)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n != len(sum) {
			return nil, fmt.Errorf("kernelhash: %v sum: %d bytes, %v", k.alg, n, err)
		}
		return sum, nil
	}
}

// Reset starts a new state on a new operation socket.
func (k *kernelSum) Reset() {
	op, err := accept(k.tfm)
	if err != nil {
		k.dead = err
		return
	}
	unix.Close(k.op)
	k.op, k.dead = op, nil
}

func (k *kernelSum) Size() int      { return k.alg.Size() }
func (k *kernelSum) BlockSize() int { return 64 } // SHA-1 and SHA-256 alike

// driver names the kernel's implementation of name, the one /proc/crypto
// lists with the highest priority; "" when it cannot be read.
func driver(name string) string {
	f, err := os.Open("/proc/crypto")
	if err != nil {
		return ""
	}
	defer f.Close()
	best, bestPrio := "", -1
	var cur struct {
		name, driver string
		prio         int
	}
	flush := func() {
		if cur.name == name && cur.prio > bestPrio {
			best, bestPrio = cur.driver, cur.prio
		}
		cur.name, cur.driver, cur.prio = "", "", 0
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			flush()
			continue
		}
		switch v = strings.TrimSpace(v); strings.TrimSpace(k) {
		case "name":
			cur.name = v
		case "driver":
			cur.driver = v
		case "priority":
			cur.prio, _ = strconv.Atoi(v)
		}
	}
	flush()
	return best
}
