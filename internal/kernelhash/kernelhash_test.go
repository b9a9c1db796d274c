package kernelhash

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"hash"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// On the build machines (no AF_ALG) these tests check Go's fallback; in
// the virtual board (lab_test.go) the same tests check the kernel's sums.

var algs = []crypto.Hash{crypto.SHA256, crypto.SHA1}

func goRef(alg crypto.Hash) hash.Hash {
	if alg == crypto.SHA1 {
		return sha1.New()
	}
	return sha256.New()
}

func TestSumsMatchGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 5<<20+3)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sizes := []int{0, 1, 55, 56, 63, 64, 65, 4095, 4096, 4097, 65536 + 1, 1<<20 + 3, len(data)}
	splits := map[string]func(n int) []int{
		"one write": func(n int) []int { return []int{n} },
		"1000-byte writes": func(n int) []int {
			var s []int
			for ; n > 1000; n -= 1000 {
				s = append(s, 1000)
			}
			return append(s, n)
		},
		"random writes": func(n int) []int {
			var s []int
			for n > 0 {
				k := min(n, 1+rng.IntN(300000))
				s, n = append(s, k), n-k
			}
			return s
		},
	}
	for _, alg := range algs {
		for name, split := range splits {
			for _, n := range sizes {
				h := New(alg)
				ref := goRef(alg)
				off := 0
				for i, k := range split(n) {
					h.Write(data[off : off+k])
					ref.Write(data[off : off+k])
					off += k
					if i%7 == 3 { // a Sum mid-way must not disturb the state
						if got, want := h.Sum(nil), ref.Sum(nil); string(got) != string(want) {
							t.Fatalf("%v %s, %d bytes, mid-way at %d: %x, want %x", alg, name, n, off, got, want)
						}
					}
				}
				if got, want := h.Sum([]byte("prefix")), ref.Sum([]byte("prefix")); string(got) != string(want) {
					t.Errorf("%v %s, %d bytes: %x, want %x", alg, name, n, got, want)
				}
				if err := h.Err(); err != nil {
					t.Errorf("%v %s, %d bytes: %v", alg, name, n, err)
				}
				if err := h.Close(); err != nil {
					t.Error(err)
				}
			}
		}
	}
}

func TestSumTwiceWriteOnResetReuse(t *testing.T) {
	for _, alg := range algs {
		h := New(alg)
		defer h.Close()
		if h.Size() != alg.Size() || h.BlockSize() != 64 {
			t.Errorf("%v: size %d block %d", alg, h.Size(), h.BlockSize())
		}
		h.Write([]byte("ab"))
		a, b := h.Sum(nil), h.Sum(nil)
		if string(a) != string(b) {
			t.Errorf("%v: two Sums differ: %x %x", alg, a, b)
		}
		h.Write([]byte("c"))
		ref := goRef(alg)
		ref.Write([]byte("abc"))
		if got, want := h.Sum(nil), ref.Sum(nil); string(got) != string(want) {
			t.Errorf("%v: write after Sum: %x, want %x", alg, got, want)
		}
		h.Reset()
		h.Write([]byte("x"))
		ref.Reset()
		ref.Write([]byte("x"))
		if got, want := h.Sum(nil), ref.Sum(nil); string(got) != string(want) {
			t.Errorf("%v: after Reset: %x, want %x", alg, got, want)
		}
		h.Reset()
		if got, want := h.Sum(nil), goRef(alg).Sum(nil); string(got) != string(want) {
			t.Errorf("%v: empty after Reset: %x, want %x", alg, got, want)
		}
	}
}

func TestUnsupportedAlgPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "not supported") {
			t.Errorf("recover() = %v", r)
		}
	}()
	New(crypto.MD5)
}

// brokenEngine is a fake of a crypto engine driver that computes wrong
// sums past its first block: what the self-check is there to catch.
type brokenEngine struct{ hash.Hash }

func (b brokenEngine) Write(p []byte) (int, error) {
	if len(p) > 64 {
		p = append([]byte{p[0] ^ 1}, p[1:]...)
	}
	return b.Hash.Write(p)
}

func TestSelfCheck(t *testing.T) {
	good := func(alg crypto.Hash) (*Hash, error) { return &Hash{Hash: goRef(alg)}, nil }
	broken := func(alg crypto.Hash) (*Hash, error) { return &Hash{Hash: brokenEngine{goRef(alg)}}, nil }
	for _, alg := range algs {
		if err := selfCheck(alg, good); err != nil {
			t.Errorf("%v, Go's own: %v", alg, err)
		}
		err := selfCheck(alg, broken)
		if !errors.Is(err, ErrWrongSum) || !strings.Contains(err.Error(), "Go's") {
			t.Errorf("%v, a broken engine passed the self-check: %v", alg, err)
		}
	}
}

func TestBackendSaysWhich(t *testing.T) {
	for _, alg := range algs {
		name, why := Backend(alg)
		switch {
		case name == "go" && why == nil && runtime.GOOS == "linux":
			t.Errorf("%v: Go without a reason", alg)
		case name != "go" && !strings.HasPrefix(name, "kernel "):
			t.Errorf("%v: backend %q", alg, name)
		}
		t.Logf("%v: %s (%v)", alg, name, why)
	}
}
