package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/localapi"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/firmware"
)

// statusAgent is an agent with the given domains and no daemons behind
// it, and the unix socket's handler.
func statusAgent(t testing.TB, domains ...domain) (*agent, http.Handler) {
	root := t.TempDir()
	a := &agent{paths: paths.Paths{Root: root}, cfgPath: filepath.Join(root, "etc/boxagent/config.toml"),
		version: "test", started: time.Now().Add(-90 * time.Minute),
		log: slog.New(slog.DiscardHandler), events: localapi.NewBroker(8), cfg: config.Default(),
		listeners: apitype.Listeners{Socket: filepath.Join(root, "run/boxagent/api.sock"), HTTP: "127.0.0.1:8080"},
		domains:   domains}
	api := localapi.New(localapi.Options{Backend: a, Events: a.events, Logger: a.log})
	return a, api.Handler(true)
}

func getStatus(t testing.TB, h http.Handler) []byte {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/status", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status: %d %q\n%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	return rec.Body.Bytes()
}

// countingDomain counts how often status asks for its line.
type countingDomain struct {
	name   string
	asked  atomic.Int64
	detail atomic.Pointer[string]
}

func (d *countingDomain) Name() string                    { return d.name }
func (d *countingDomain) Register(*localapi.Server)       {}
func (d *countingDomain) Start(ctx context.Context) error { return nil }
func (d *countingDomain) Stop()                           {}
func (d *countingDomain) Health() apitype.Subsystem {
	d.asked.Add(1)
	s := apitype.Subsystem{Name: d.name, State: apitype.StateOK}
	if p := d.detail.Load(); p != nil {
		s.Detail = *p
	}
	return s
}

// TestStatusAnswerBytes: the answer made once and completed with the
// uptime at each call is, byte for byte, what localapi.WriteJSON writes
// for the whole Status value (the API's answer before the cache), with
// details that JSON escapes.
func TestStatusAnswerBytes(t *testing.T) {
	d := &countingDomain{name: "bluetooth"}
	detail := `hci0 "office" <headset> & 2 connected, ünïcode` + "\n\t\u2028"
	d.detail.Store(&detail)
	a, h := statusAgent(t, d)
	for range 3 {
		body := getStatus(t, h)
		var got apitype.Status
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.UptimeSeconds < 90*60 {
			t.Fatalf("uptime %v, want more than 90 minutes", got.UptimeSeconds)
		}
		want := a.statusNow()
		want.UptimeSeconds = got.UptimeSeconds
		rec := httptest.NewRecorder()
		localapi.WriteJSON(rec, http.StatusOK, want)
		if !bytes.Equal(body, rec.Body.Bytes()) {
			t.Fatalf("the answer differs from WriteJSON's:\n%s\nwant\n%s", body, rec.Body)
		}
		if st := a.Status(context.Background()); st.Subsystems[2].Detail != detail || st.UptimeSeconds < got.UptimeSeconds {
			t.Errorf("Status() = %+v", st)
		}
	}
}

// TestAppendJSONFloat: the uptime is written as encoding/json writes a
// float64, in and out of the range of plain decimals.
func TestAppendJSONFloat(t *testing.T) {
	for _, v := range []float64{0, 5e-7, 1e-6, 0.1, 1.5, 5400.123456789, 86400 * 365 * 30, 1e20, 1e21, 3.3e25, math.Nextafter(1e21, 0), math.SmallestNonzeroFloat64} {
		want, _ := json.Marshal(v)
		if got := appendJSONFloat(nil, v); string(got) != string(want) {
			t.Errorf("%v: %s, want %s", v, got, want)
		}
	}
}

// TestStatusAsksOnlyAfterChange: a status call reads the answer made
// after the last change; the domains are asked for their lines only
// after an event or a change without one, once, however many calls.
func TestStatusAsksOnlyAfterChange(t *testing.T) {
	d := &countingDomain{name: "wifi"}
	a, h := statusAgent(t, d)
	calls := func(n int) {
		for range n {
			getStatus(t, h)
		}
	}
	calls(100)
	if n := d.asked.Load(); n != 1 {
		t.Fatalf("100 calls asked the domain %d times, want 1", n)
	}
	a.events.Publish("wifi", map[string]string{"kind": "state"})
	calls(100)
	if n := d.asked.Load(); n != 2 {
		t.Fatalf("after an event: asked %d times, want 2", n)
	}
	detail := "wlan0 completed (-40 dBm)"
	d.detail.Store(&detail)
	a.statusChanged()
	body := getStatus(t, h)
	calls(99)
	if n := d.asked.Load(); n != 3 || !strings.Contains(string(body), detail) {
		t.Fatalf("after statusChanged: asked %d times, want 3; answer:\n%s", n, body)
	}
}

// TestStatusCallsRace: calls, events and changes at once (-race).
func TestStatusCallsRace(t *testing.T) {
	d := &countingDomain{name: "network"}
	a, h := statusAgent(t, d)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				switch (i + j) % 10 {
				case 0:
					a.events.Publish("net", j)
				case 1:
					a.statusChanged()
				default:
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/status", nil))
					if rec.Code != http.StatusOK {
						t.Errorf("status: %d\n%s", rec.Code, rec.Body)
					}
				}
			}
		})
	}
	wg.Wait()
	before := d.asked.Load()
	getStatus(t, h)
	getStatus(t, h)
	if n := d.asked.Load(); n > before+1 {
		t.Errorf("two quiet calls asked %d times", n-before)
	}
}

// fillStore writes n artifacts' packages and metadata into dir (what an
// import leaves) and opens the store.
func fillStore(t testing.TB, dir string, n int) *firmware.Store {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		pkg := []byte(fmt.Sprintf("package %d", i))
		sum := sha256.Sum256(pkg)
		sha := hex.EncodeToString(sum[:])
		meta, _ := json.Marshal(firmware.Artifact{SHA256: sha, Size: int64(len(pkg)), Method: "sha256", Added: time.Now().UTC()})
		if err := os.WriteFile(filepath.Join(dir, sha), pkg, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, sha+".json"), meta, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := firmware.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// firmwareStatusAgent is an agent whose firmware domain has a store of n
// artifacts (no sticks followed).
func firmwareStatusAgent(t testing.TB, n int) (*agent, *firmware.Store, http.Handler) {
	fw := &firmwareDomain{health: apitype.Subsystem{Name: "firmware", State: apitype.StateOK}}
	a, h := statusAgent(t, fw)
	fw.a, fw.log = a, a.log
	fw.store = fillStore(t, a.paths.ArtifactsDir(), n)
	fw.store.OnChange(a.statusChanged)
	return a, fw.store, h
}

// TestStatusFollowsTheStore: the firmware line changes when the store
// does (its OnChange), with no event.
func TestStatusFollowsTheStore(t *testing.T) {
	_, store, h := firmwareStatusAgent(t, 3)
	if body := getStatus(t, h); !strings.Contains(string(body), "3 artifacts, 0 USB sticks") {
		t.Fatalf("answer:\n%s", body)
	}
	arts, err := store.List()
	if err != nil || len(arts) != 3 {
		t.Fatal(arts, err)
	}
	if err := store.Remove(arts[0].SHA256); err != nil {
		t.Fatal(err)
	}
	if body := getStatus(t, h); !strings.Contains(string(body), "2 artifacts, 0 USB sticks") {
		t.Fatalf("after a removal:\n%s", body)
	}
}

// TestStatusFollowsDamagedJournals: a damaged journal kept beside the
// journal degrades its line; removing it is seen by inotify, with no
// call to the doctor and no restart.
func TestStatusFollowsDamagedJournals(t *testing.T) {
	a, h := statusAgent(t)
	db := a.paths.JournalDB()
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		t.Fatal(err)
	}
	kept := db + ".corrupt-20261201T000000Z"
	if err := os.WriteFile(kept, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.followJournal(ctx)
	journalLine := func() apitype.Subsystem {
		var st apitype.Status
		if err := json.Unmarshal(getStatus(t, h), &st); err != nil {
			t.Fatal(err)
		}
		return st.Subsystems[1]
	}
	if j := journalLine(); j.State != apitype.StateDegraded || !strings.Contains(j.Detail, kept) {
		t.Fatalf("journal line with %s kept: %+v", kept, j)
	}
	if err := os.Remove(kept); err != nil {
		t.Fatal(err)
	}
	// inotify tells the agent's goroutine: wait for it, up to a bound.
	for deadline := time.Now().Add(10 * time.Second); journalLine().State != apitype.StateOK; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the journal line still says %+v after the file was removed", journalLine())
		}
	}
}

// discardResponse is a ResponseWriter that keeps nothing, so that the
// benchmark measures the handler.
type discardResponse struct{ h http.Header }

func (w *discardResponse) Header() http.Header         { return w.h }
func (w *discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardResponse) WriteHeader(int)             {}

// BenchmarkStatus is GET /api/v1/status through the socket's handler
// with 0 and 50 artifacts in the store: the same cost and allocations
// for both (the store is not read per call). "changed" makes the answer
// again at every call, as the first call after a change does.
func BenchmarkStatus(b *testing.B) {
	for _, n := range []int{0, 50} {
		for _, changed := range []bool{false, true} {
			b.Run(fmt.Sprintf("artifacts=%d/changed=%v", n, changed), func(b *testing.B) {
				a, _, h := firmwareStatusAgent(b, n)
				req := httptest.NewRequest("GET", "/api/v1/status", nil)
				w := &discardResponse{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					if changed {
						a.statusChanged()
					}
					h.ServeHTTP(w, req)
				}
			})
		}
	}
}
