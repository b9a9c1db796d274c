// Command boxagent-fleetsim runs N real fleet links in one process against
// a real broker on loopback (Debian's mosquitto with TLS client
// certificates and the per-box ACL, or a three-node NATS cluster with
// JetStream and MQTT), each link with a small fake backend: an in-memory
// journal and a route that counts its runs. It measures the connect
// storm, one group command to all, a burst of records, memory, and for
// NATS a node killed under the fleet, and prints a Markdown table row
// for docs/BENCHMARKS.md. Figures are measured, never asserted.
//
//	go run ./cmd/boxagent-fleetsim -broker mosquitto -n 1000
//	go run ./cmd/boxagent-fleetsim -broker nats -n 1000
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/fleet"
	"github.com/boxagent/boxagent/cmd/boxagent/fleet/fleettest"
)

func main() {
	broker := flag.String("broker", "mosquitto", "mosquitto or nats")
	n := flag.Int("n", 1000, "how many boxes")
	inFlight := flag.Int("connects", 100, "connects in flight at once (the accept queue overflows beyond ~100)")
	records := flag.Int("records", 10, "records per box in the burst")
	flag.Parse()
	raiseFileLimit()
	env := &simT{dir: must(os.MkdirTemp("", "fleetsim-"))}
	defer env.cleanup()
	if err := run(env, *broker, *n, *inFlight, *records); err != nil {
		env.cleanup()
		log.Fatal(err)
	}
}

func must[V any](v V, err error) V {
	if err != nil {
		log.Fatal(err)
	}
	return v
}

// raiseFileLimit: one descriptor per link here and per connection in the
// broker, which inherits the limit.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func run(env *simT, kind string, n, inFlight, records int) error {
	opKey, opPub := mustKey()
	cfg := config.Fleet{Groups: []string{"all"}, Routes: []string{"POST /api/v1/test/work", "GET /api/v1/operations"}, OperatorKeys: []string{opPub}, Keepalive: 60}
	var brokers [][]string // per box
	var opBrokers []string
	var pids []int
	var nodes []*fleettest.Node
	var pki *fleettest.PKI
	switch kind {
	case "mosquitto":
		pki = fleettest.NewPKI(env)
		url, pid := fleettest.StartMosquittoPID(env, pki)
		pids = []int{pid}
		opBrokers = []string{url}
		for range n {
			brokers = append(brokers, []string{url})
		}
	case "nats":
		nodes = fleettest.StartNATSCluster(env)
		for _, nd := range nodes {
			pids = append(pids, nd.PID())
		}
		opBrokers = []string{nodes[2].MQTT, nodes[1].MQTT}
		for i := range n {
			var b []string
			for j := range 3 {
				b = append(b, nodes[(i+j)%3].MQTT)
			}
			brokers = append(brokers, b)
		}
	default:
		return fmt.Errorf("-broker %q: mosquitto or nats", kind)
	}
	ctx := context.Background()
	var opTLS *tls.Config
	if pki != nil {
		opTLS = pki.ClientTLS(env, "operator")
	}
	op, err := fleet.DialOperator(ctx, fleet.OperatorOptions{Brokers: opBrokers, TLS: opTLS, Key: opKey, Resend: 10 * time.Second, TTL: time.Hour})
	if err != nil {
		return err
	}
	defer op.Close()
	archive, err := fleet.DialOperator(ctx, fleet.OperatorOptions{Brokers: opBrokers, TLS: opTLS, ClientID: "archive", Persistent: true})
	if err != nil {
		return err
	}
	defer archive.Close()
	recs := newRecordCount()
	actx, acancel := context.WithCancel(ctx)
	defer acancel()
	go archive.Watch(actx, "+", []string{"ops"}, recs.add)

	rssBefore := selfRSS()
	var boxes []*simBox
	ids := make([]string, n)
	start := time.Now()
	sem := make(chan struct{}, inFlight)
	var connectTimes []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = fmt.Sprintf("sim-%05d", i)
		c := cfg
		c.Brokers = brokers[i]
		id := fleet.Identity{ID: ids[i]}
		if pki != nil {
			c.CA = pki.CAFile
			c.Cert, c.Key = pki.Issue(env, ids[i], false, time.Now().Add(24*time.Hour))
			if id, err = fleet.LoadIdentity(c); err != nil {
				return err
			}
		}
		b, err := newSimBox(c, id)
		if err != nil {
			return err
		}
		boxes = append(boxes, b)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			b.start()
			for !b.link.Info().Connected {
				time.Sleep(10 * time.Millisecond)
			}
			<-sem
			mu.Lock()
			connectTimes = append(connectTimes, time.Since(t0))
			mu.Unlock()
		}()
	}
	wg.Wait()
	storm := time.Since(start)
	runtime.GC()
	perLink := (selfRSS() - rssBefore) / int64(n)
	brokerRSS := int64(0)
	for _, p := range pids {
		brokerRSS += rssOf(p)
	}
	log.Printf("%d online in %s (connect p99 %s), %d kB per link here, broker RSS %d MB", n, storm.Round(time.Millisecond), pct(connectTimes, 99), perLink>>10, brokerRSS>>20)

	// One group command to all, no window: the time until each reply.
	group := func(name string) ([]time.Duration, []string, error) {
		var lat []time.Duration
		t0 := time.Now()
		gctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		left, err := op.SendGroup(gctx, "all", ids, fleet.Command{Method: "POST", Path: "/api/v1/test/work", Body: json.RawMessage(`{"n":"` + name + `"}`)},
			func(fleet.Reply) { lat = append(lat, time.Since(t0)) })
		return lat, left, err
	}
	lat, left, err := group("g1")
	if err != nil {
		return fmt.Errorf("group command: %d did not answer: %w", len(left), err)
	}
	log.Printf("group command: p50 %s p99 %s, all %s", pct(lat, 50), pct(lat, 99), pct(lat, 100))

	// A burst of records per box; on NATS the node a third of the boxes
	// use is killed in the middle of it.
	t0 := time.Now()
	for _, b := range boxes {
		go b.burst(records)
	}
	kill := ""
	var back time.Duration
	if nodes != nil {
		time.Sleep(300 * time.Millisecond)
		nodes[0].Kill()
		tk := time.Now()
		// The boxes of the dead node notice within ms (the spike: 2–40 ms).
		time.Sleep(100 * time.Millisecond)
		for !allConnected(boxes) && time.Since(tk) < 3*time.Minute {
			time.Sleep(20 * time.Millisecond)
		}
		back = time.Since(tk)
	}
	want := n * (records + 1) // the group command's record too
	for recs.total() < want && time.Since(t0) < 3*time.Minute {
		time.Sleep(50 * time.Millisecond)
	}
	burst := time.Since(t0)
	repaired := repair(ctx, archive, op, boxes, recs)
	got, dups := recs.total(), recs.dups()
	log.Printf("burst: %d of %d records in %s, %d fetched from the boxes, %d twice", got-repaired, want, burst.Round(time.Millisecond), repaired, dups)
	if nodes != nil {
		lat2, left2, err := group("g2")
		if err != nil {
			return fmt.Errorf("group command after the kill: %d did not answer: %w", len(left2), err)
		}
		twice := 0
		for _, b := range boxes {
			if b.runs("g1") != 1 || b.runs("g2") != 1 {
				twice++
			}
		}
		kill = fmt.Sprintf("killed mid-burst: all connected again %s after; the next group command p50 %s p99 %s; boxes that ran a command other than once: %d", back.Round(time.Millisecond), pct(lat2, 50), pct(lat2, 99), twice)
		log.Print(kill)
	}
	once := 0
	for _, b := range boxes {
		if b.runs("g1") == 1 {
			once++
		}
	}
	fmt.Printf("| %s | %d | %s (connect p99 %s) | %s / %s | %s, %d of %d records (%d fetched from the box after the broker lost them, %d twice) | %d MB | %d kB | %d of %d ran it once | %s |\n",
		kind, n, storm.Round(10*time.Millisecond), pct(connectTimes, 99), pct(lat, 50), pct(lat, 99),
		burst.Round(10*time.Millisecond), got, want, repaired, dups, brokerRSS>>20, perLink>>10, once, n, kill)
	for _, b := range boxes {
		b.stop()
	}
	return nil
}

func allConnected(boxes []*simBox) bool {
	for _, b := range boxes {
		if !b.link.Info().Connected {
			return false
		}
	}
	return true
}

// repair asks the boxes with a gap for what the broker lost.
func repair(ctx context.Context, archive, op *fleet.Operator, boxes []*simBox, recs *recordCount) int {
	n := 0
	for _, b := range boxes {
		have := recs.of(b.id)
		if len(have) == b.journal.count() {
			continue
		}
		ops, err := op.Missing(ctx, b.id, have)
		if err != nil {
			log.Printf("%s: %v", b.id, err)
		}
		for _, o := range ops {
			recs.addID(b.id, o.ID)
			n++
		}
	}
	return n
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))].Round(time.Millisecond)
}

// selfRSS and rssOf read VmRSS from /proc.
func selfRSS() int64 { return rssOf(os.Getpid()) }

func rssOf(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}
