package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/fleet/fleettest"
)

// benchT runs fleettest's helpers (the test CA and Debian's mosquitto, as
// the fleet tests start them) outside a test: a failure ends the figure
// with an error, and cleanup stops the broker.
type benchT struct {
	dir      string
	cleanups []func()
}

type benchFailure struct{ err error }

func (b *benchT) Helper()                           {}
func (b *benchT) Logf(string, ...any)               {}
func (b *benchT) Cleanup(f func())                  { b.cleanups = append(b.cleanups, f) }
func (b *benchT) Fatalf(format string, args ...any) { panic(benchFailure{fmt.Errorf(format, args...)}) }
func (b *benchT) Skipf(format string, args ...any)  { panic(benchFailure{fmt.Errorf(format, args...)}) }
func (b *benchT) TempDir() string {
	d, err := os.MkdirTemp(b.dir, "t")
	if err != nil {
		panic(benchFailure{err})
	}
	return d
}

func (b *benchT) close() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}

// fleetAgent is the agent again with its fleet link on, connected to
// Debian's mosquitto on loopback (TLS, client certificate): what a box
// pays for the link, beside the agent without it. The caller stops it and
// closes bt.
func fleetAgent(bin, dir string) (s *server, bt *benchT, err error) {
	bt = &benchT{dir: dir}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(benchFailure)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("the fleet link's broker: %w", f.err)
		}
	}()
	pki := fleettest.NewPKI(bt)
	url := fleettest.StartMosquitto(bt, pki)
	cert, key := pki.Issue(bt, "bench-box", false, time.Now().Add(24*time.Hour))
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, bt, err
	}
	root := filepath.Join(dir, "fleet-root")
	cfg := fmt.Sprintf("[fleet]\nbrokers = [%q]\nca = %q\ncert = %q\nkey = %q\nroutes = [\"GET /api/v1/status\"]\noperator_keys = [%q]\n",
		url, pki.CAFile, cert, key, base64.StdEncoding.EncodeToString(pub))
	if err := os.MkdirAll(filepath.Join(root, "etc/boxagent"), 0o700); err != nil {
		return nil, bt, err
	}
	if err := os.WriteFile(filepath.Join(root, "etc/boxagent/config.toml"), []byte(cfg), 0o600); err != nil {
		return nil, bt, err
	}
	s, err = newServer("boxagent, fleet link on", filepath.Join(dir, "fleet-agent"),
		[]string{bin, "serve", "--root", root, "--listen", "127.0.0.1:0", "--log-level", "warn"}, nil,
		filepath.Join(root, "run/boxagent/api.sock"))
	if err != nil {
		return nil, bt, err
	}
	if _, err := s.start(); err != nil {
		return nil, bt, err
	}
	// Connected: the status names the link ok (the bench may wait so; the
	// agent follows the link by its own events).
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := s.status()
		if err == nil && strings.Contains(string(st), "connected to ") && strings.Contains(string(st), " as bench-box") {
			return s, bt, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, bt, fmt.Errorf("the fleet link did not connect in 30 s: %s", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
