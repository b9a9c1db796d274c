package cli_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFirmwareURLAttacks drives fw add URL against servers on loopback as
// an attacker would set them up: a redirect to a public address (followed
// by the old agent), a URL with credentials (kept verbatim in the journal
// and shown by history --json), and a server that stalls (the old agent
// held the firmware lock for up to 30 minutes, with no way to cancel).
func TestFirmwareURLAttacks(t *testing.T) {
	root := fwRoot(t, "")
	good := filepath.Join(t.TempDir(), "update.zip")
	writeZip(t, good, "META-INF/com/google/android/update-binary")
	pkg, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "http://192.0.2.1/update.zip", http.StatusFound)
		case "/private/update.zip":
			if u, p, ok := r.BasicAuth(); !ok || u != "builder" || p != "s3cret-pass" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			http.ServeContent(w, r, "update.zip", time.Time{}, bytes.NewReader(pkg))
		case "/stall":
			w.Header().Set("Content-Length", "100000000")
			w.Write(pkg[:10])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	defer srv.Close()
	p := startAgent(t, root)

	if _, errOut, code := p.run("fw", "add", srv.URL+"/redirect"); code != 1 || !strings.Contains(errOut, "fw.not_lan") {
		t.Errorf("fw add of a URL redirecting off the LAN: exit %d\n%s", code, errOut)
	}

	withPass := strings.Replace(srv.URL, "http://", "http://builder:s3cret-pass@", 1) + "/private/update.zip"
	if out, errOut, code := p.run("fw", "add", withPass); code != 0 {
		t.Fatalf("fw add of a URL with credentials: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code := p.run("history", "--json", "--kind", "fw.add")
	if code != 0 || !strings.Contains(out, "/private/update.zip") {
		t.Fatalf("history --json: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "s3cret-pass") {
		t.Errorf("history --json shows the URL's password:\n%s", out)
	}
	if data, _ := os.ReadFile(filepath.Join(root, "var/lib/boxagent/journal.db")); bytes.Contains(data, []byte("s3cret-pass")) {
		t.Error("the journal file holds the URL's password")
	}

	// A stalled download is cancelled from the CLI.
	add := boxagentCmd("fw", "add", srv.URL+"/stall", "--socket", p.socket)
	var addErr bytes.Buffer
	add.Stderr = &addErr
	if err := add.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- add.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, _ := p.run("history", "--kind", "fw.add", "--state", "running")
		if strings.Contains(out, "running") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalled fw add never ran:\n%s", addErr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, errOut, code := p.run("fw", "cancel"); code != 0 || !strings.Contains(out, "cancelling operation") {
		t.Fatalf("fw cancel: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(addErr.String(), "operation.cancelled") {
			t.Errorf("fw add after cancel: %v\n%s", err, addErr.String())
		}
	case <-time.After(10 * time.Second):
		add.Process.Kill()
		t.Fatal("fw add still runs 10 s after fw cancel")
	}
	out, _, _ = p.run("history", "--kind", "fw.add", "-n", "1")
	if !strings.Contains(out, "cancelled") {
		t.Errorf("history after cancel:\n%s", out)
	}
	// The firmware lock is free again.
	if out, errOut, code := p.run("fw", "add", good); code != 0 {
		t.Errorf("fw add after the cancel: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := p.run("fw", "cancel"); code == 0 {
		t.Errorf("fw cancel with nothing running succeeded:\n%s", errOut)
	}
}
