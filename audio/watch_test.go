package audio

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestSocketPaths(t *testing.T) {
	got := SocketPaths([]Server{
		{DBus: "unix:path=/run/pulse/dbus-socket", Native: "unix:/run/pulse/native"},
		{DBus: "unix:path=/run/user/0/pulse/dbus-socket,guid=abc"},
		{Native: "unix:/run/pulse/native"}, // once
		{DBus: "tcp:host=box,port=4713", Native: "tcp:box:4713"},
		{DBus: "unix:abstract=pulse"},
	})
	want := []string{"/run/pulse/dbus-socket", "/run/pulse/native", "/run/user/0/pulse/dbus-socket"}
	if !slices.Equal(got, want) {
		t.Errorf("SocketPaths = %q, want %q", got, want)
	}
}

// TestSocketWatch: a sound server that starts after the agent is seen when
// it makes its socket, also when its folder does not exist yet; a
// stranger's file in the same folder, or a stale socket, wakes nothing.
func TestSocketWatch(t *testing.T) {
	wait := func(t *testing.T, w *SocketWatch, within time.Duration) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		return w.Wait(ctx)
	}
	t.Run("socket made in an existing folder", func(t *testing.T) {
		dir := t.TempDir()
		w, err := WatchSockets([]string{filepath.Join(dir, "native")})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		os.WriteFile(filepath.Join(dir, "cookie"), nil, 0o600) // another name: no wakeup
		if err := wait(t, w, 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait after another file = %v, want none", err)
		}
		l, err := net.Listen("unix", filepath.Join(dir, "native"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := wait(t, w, 30*time.Second); err != nil { // a guard
			t.Fatalf("Wait after the socket appeared = %v", err)
		}
	})
	t.Run("the folder itself appears", func(t *testing.T) {
		run := t.TempDir()
		w, err := WatchSockets([]string{filepath.Join(run, "pulse", "dbus-socket")})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if err := os.Mkdir(filepath.Join(run, "pulse"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, w, 30*time.Second); err != nil {
			t.Fatalf("Wait after the server's folder appeared = %v", err)
		}
	})
	t.Run("a stale socket wakes nothing", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "native"), nil, 0o600) // left by a dead server
		w, err := WatchSockets([]string{filepath.Join(dir, "native")})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if err := wait(t, w, 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait with only a stale socket = %v, want none", err)
		}
		// Its successor removes it and makes its own.
		os.Remove(filepath.Join(dir, "native"))
		l, err := net.Listen("unix", filepath.Join(dir, "native"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := wait(t, w, 30*time.Second); err != nil {
			t.Fatalf("Wait after the new server's socket = %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		w, err := WatchSockets([]string{filepath.Join(t.TempDir(), "native")})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		if err := w.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait cancelled = %v", err)
		}
	})
}
