package daemon

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// shorten sets the download limits for one test.
func shorten(t *testing.T, stall, header time.Duration) {
	t.Helper()
	oldStall, oldHeader := stallTimeout, headerTimeout
	stallTimeout, headerTimeout = stall, header
	t.Cleanup(func() { stallTimeout, headerTimeout = oldStall, oldHeader })
}

// TestDownloadStalled: a server that sends its headers and a few bytes,
// then nothing, held the firmware lock for up to 30 minutes (the old
// client's only timeout); one that never answers, as long. Both end now.
func TestDownloadStalled(t *testing.T) {
	shorten(t, 300*time.Millisecond, 300*time.Millisecond)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/silent" {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Length", "1000000")
		w.Write([]byte("PK\x03\x04 a few bytes"))
		w.(http.Flusher).Flush()
		if r.URL.Path == "/trickle" {
			for r.Context().Err() == nil {
				time.Sleep(20 * time.Millisecond)
				w.Write([]byte("x"))
				w.(http.Flusher).Flush()
			}
		}
		<-r.Context().Done()
	}))
	defer srv.Close()

	for _, path := range []string{"/stall", "/trickle"} {
		start := time.Now()
		body, _, err := download(context.Background(), srv.URL+path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, body)
		body.Close()
		if !errors.Is(err, errStalled) || time.Since(start) > 5*time.Second {
			t.Errorf("%s: read = %v after %s, want errStalled within a second", path, err, time.Since(start))
		}
	}
	start := time.Now()
	if _, _, err := download(context.Background(), srv.URL+"/silent"); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("a server that never answers: %v after %s", err, time.Since(start))
	}
}

// TestDownloadOffLAN: the LAN rule was checked on the first URL only, by a
// separate lookup; a redirect to a public address was followed.
func TestDownloadOffLAN(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1"+strings.TrimPrefix(r.URL.Path, "/to")+"/update.zip", http.StatusFound)
	}))
	defer srv.Close()
	_, _, err := download(context.Background(), srv.URL+"/to")
	if !errors.Is(err, errNotLAN) {
		t.Errorf("redirect to a public address: %v, want errNotLAN", err)
	}
	for addr, lan := range map[string]bool{
		"127.0.0.1:80": true, "192.168.1.10:8080": true, "[fe80::1]:80": true, "[::ffff:10.0.0.1]:80": true,
		"1.1.1.1:80": false, "[::ffff:8.8.8.8]:80": false, "[2001:db8::1]:80": false, "0.0.0.0:80": false,
	} {
		if err := lanOnly("tcp", addr, nil); (err == nil) != lan {
			t.Errorf("lanOnly(%s) = %v, want LAN %v", addr, err, lan)
		}
	}
}

func TestRedactURL(t *testing.T) {
	got := redactURL("http://user:s3cret@192.168.1.2/update.zip")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "192.168.1.2/update.zip") {
		t.Errorf("redactURL = %q", got)
	}
}
