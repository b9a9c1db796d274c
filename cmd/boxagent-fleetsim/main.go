// Command boxagent-fleetsim runs N real fleet links in one process against
// a real broker on loopback (Debian's mosquitto with TLS client
// certificates and the per-box ACL, or a three-node NATS cluster with
// JetStream and MQTT), each link with a small fake backend: an in-memory
// journal and a route that counts its runs. It measures the connect
// storm, one group command to all, a burst of records, memory, and for
// NATS a node killed under the fleet, and prints a Markdown table row
// for docs/BENCHMARKS.md. Figures are measured, never asserted.
//
// It says on stderr where it is (each phase's start, its count every 5 s,
// its end with its figures; -quiet keeps only the figures). -timeout, or
// a first SIGINT or SIGTERM, stops the run with the figures it has, the
// links and brokers stopped; a second signal kills the brokers at once.
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
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	timeout := flag.Duration("timeout", 2*time.Hour, "bound of the whole run: at its end the run stops with the figures it has, links and brokers stopped")
	quiet := flag.Bool("quiet", false, "no progress on stderr: only each phase's figures and the row")
	flag.Parse()
	raiseFileLimit()
	env := &simT{dir: must(os.MkdirTemp("", "fleetsim-"))}
	defer env.cleanup()
	ctx, stop := stopOn(env, *timeout)
	defer stop()
	if err := run(ctx, env, newProgress(os.Stderr, *quiet), *broker, *n, *inFlight, *records); err != nil {
		env.cleanup()
		log.Fatal(err)
	}
}

// stopOn is a context that ends, with the reason as its cause, at the
// timeout or at the first SIGINT or SIGTERM; the run then stops with
// what it has. A second signal kills the brokers and exits at once.
func stopOn(env *simT, timeout time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	t := time.AfterFunc(timeout, func() { cancel(fmt.Errorf("-timeout %s", timeout)) })
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		cancel(fmt.Errorf("%s", <-sig))
		<-sig
		log.Print("a second signal: brokers killed, no figures")
		env.cleanup()
		os.Exit(130)
	}()
	return ctx, func() { t.Stop(); signal.Stop(sig); cancel(nil) }
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

func run(ctx context.Context, env *simT, prog *progress, kind string, n, inFlight, records int) error {
	if kind != "mosquitto" && kind != "nats" {
		return fmt.Errorf("-broker %q: mosquitto or nats", kind)
	}
	opKey, opPub := mustKey()
	cfg := config.Fleet{Groups: []string{"all"}, Routes: []string{"POST /api/v1/test/work", "GET /api/v1/operations"}, OperatorKeys: []string{opPub}, Keepalive: 60}
	var brokers [][]string // per box
	var opBrokers []string
	var nodes []*fleettest.Node
	var pki *fleettest.PKI
	procs := &procWatch{}
	ph := prog.begin("brokers", 0, nil, nil)
	switch kind {
	case "mosquitto":
		pki = fleettest.NewPKI(env)
		url, pid := fleettest.StartMosquittoPID(env, pki)
		procs.names, procs.pids = []string{"mosquitto"}, []int{pid}
		opBrokers = []string{url}
		for range n {
			brokers = append(brokers, []string{url})
		}
	case "nats":
		nodes = fleettest.StartNATSCluster(env)
		for _, nd := range nodes {
			procs.names, procs.pids = append(procs.names, nd.Name), append(procs.pids, nd.PID())
		}
		opBrokers = []string{nodes[2].MQTT, nodes[1].MQTT}
		for i := range n {
			var b []string
			for j := range 3 {
				b = append(b, nodes[(i+j)%3].MQTT)
			}
			brokers = append(brokers, b)
		}
	}
	prog.watchBrokers(procs.String)
	prog.end(ph, kind+" up; "+procs.String())
	stopped := func() error {
		return fmt.Errorf("stopped by %v; the figures so far are above", context.Cause(ctx))
	}
	if ctx.Err() != nil {
		return stopped()
	}
	var opTLS *tls.Config
	if pki != nil {
		opTLS = pki.ClientTLS(env, "operator")
	}
	op, err := fleet.DialOperator(ctx, fleet.OperatorOptions{Brokers: opBrokers, TLS: opTLS, Key: opKey, Resend: 10 * time.Second, TTL: time.Hour})
	if err != nil {
		return err
	}
	archive, err := fleet.DialOperator(ctx, fleet.OperatorOptions{Brokers: opBrokers, TLS: opTLS, ClientID: "archive", Persistent: true})
	if err != nil {
		op.Close()
		return err
	}
	recs := newRecordCount()
	actx, acancel := context.WithCancel(ctx)
	go archive.Watch(actx, "+", []string{"ops"}, recs.add)
	var boxes []*simBox
	warnings := newLinkWarnings()
	linkLog := slog.New(warnings)
	defer func() {
		// What still runs stops here, with its count: a -timeout, a
		// signal or an error ended it.
		why := "an error"
		if ctx.Err() != nil {
			why = context.Cause(ctx).Error()
		}
		prog.stop(why)
		teardown(prog, boxes, inFlight, func() {
			acancel()
			archive.Close()
			op.Close()
			env.cleanup()
		})
		log.Printf("the links' warnings over the run: %s", warnings)
	}()

	// The connect storm: inFlight boxes connecting at once, each until it
	// is subscribed to its commands.
	rssBefore := selfRSS()
	ids := make([]string, n)
	changed := make(chan struct{}, 1) // any box's link changed
	var started, online, redials atomic.Int64
	sem := make(chan struct{}, inFlight)
	var connectTimes []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	ph = prog.begin("connect storm", n, func() int { return int(online.Load()) }, func() string {
		return fmt.Sprintf("%d connecting, %d retries (dials after a box's first), %d subscriptions asked again",
			started.Load()-online.Load(), redials.Load(), warnings.count(warnSubscribe))
	})
	start := time.Now()
	for i := range n {
		ids[i] = fmt.Sprintf("sim-%05d", i)
		c := cfg
		c.Brokers = brokers[i]
		id := fleet.Identity{ID: ids[i]}
		if pki != nil {
			c.CA = pki.CAFile
			c.Cert, c.Key = pki.Issue(env, ids[i], false, time.Now().Add(24*time.Hour))
			if id, err = fleet.LoadIdentity(c); err != nil {
				wg.Wait()
				return err
			}
		}
		b, err := newSimBox(c, id, changed, &redials, linkLog)
		if err != nil {
			wg.Wait()
			return err
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		boxes = append(boxes, b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			b.start()
			started.Add(1)
			ok := b.waitConnected(ctx)
			<-sem
			if ok {
				mu.Lock()
				connectTimes = append(connectTimes, time.Since(t0))
				mu.Unlock()
				online.Add(1)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return stopped()
	}
	storm := time.Since(start)
	runtime.GC()
	perLink := (selfRSS() - rssBefore) / int64(n)
	brokerRSS := int64(0)
	for _, p := range procs.pids {
		brokerRSS += rssOf(p)
	}
	prog.end(ph, fmt.Sprintf("%d online in %s (connect p99 %s), %d retries, %d subscriptions asked again, %d kB per link here, broker RSS %d MB; %s",
		n, storm.Round(time.Millisecond), pct(connectTimes, 99), redials.Load(), warnings.count(warnSubscribe), perLink>>10, brokerRSS>>20, procs.String()))

	// One group command to all, no window: the time until each reply.
	group := func(name, title string) ([]time.Duration, error) {
		var lat []time.Duration
		var replies atomic.Int64
		ph := prog.begin(title, n, func() int { return int(replies.Load()) }, nil)
		t0 := time.Now()
		gctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		left, err := op.SendGroup(gctx, "all", ids, fleet.Command{Method: "POST", Path: "/api/v1/test/work", Body: json.RawMessage(`{"n":"` + name + `"}`)},
			func(fleet.Reply) { lat = append(lat, time.Since(t0)); replies.Add(1) })
		if ctx.Err() != nil {
			return nil, stopped()
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %d did not answer: %w", title, len(left), err)
		}
		prog.end(ph, fmt.Sprintf("p50 %s p99 %s, all %s", pct(lat, 50), pct(lat, 99), pct(lat, 100)))
		return lat, nil
	}
	lat, err := group("g1", "group command")
	if err != nil {
		return err
	}

	// A burst of records per box; on NATS the node a third of the boxes
	// use is killed in the middle of it.
	want := n * (records + 1) // the group command's record too
	reached := recs.reach(want)
	ph = prog.begin("burst of records", want, recs.total, func() string { return fmt.Sprintf("%d twice", recs.dups()) })
	t0 := time.Now()
	for _, b := range boxes {
		go b.burst(records)
	}
	kill := ""
	var back time.Duration
	if nodes != nil {
		time.Sleep(300 * time.Millisecond)
		d0, s0 := redials.Load(), warnings.count(warnSubscribe)
		kp := prog.begin("node kill", n, func() int { return connectedCount(boxes) }, func() string {
			return fmt.Sprintf("%d connections lost, %d dials, %d subscriptions asked again since the kill",
				warnings.count(warnLost), redials.Load()-d0, warnings.count(warnSubscribe)-s0)
		})
		nodes[0].Kill()
		tk := time.Now()
		// The boxes of the dead node notice within ms (the spike: 2–40 ms).
		time.Sleep(100 * time.Millisecond)
		all := waitAllConnected(ctx, time.After(3*time.Minute), changed, boxes)
		if ctx.Err() != nil {
			return stopped()
		}
		back = time.Since(tk)
		again := fmt.Sprintf("%d connections lost, %d dials", warnings.count(warnLost), redials.Load()-d0)
		if all {
			prog.end(kp, fmt.Sprintf("%s killed, all connected again %s after; %s", nodes[0].Name, back.Round(time.Millisecond), again))
		} else {
			prog.end(kp, fmt.Sprintf("%s killed, %d of %d connected again after %s; %s", nodes[0].Name, connectedCount(boxes), n, back.Round(time.Millisecond), again))
		}
	}
	select {
	case <-reached:
	case <-time.After(time.Until(t0.Add(3 * time.Minute))):
	case <-ctx.Done():
		return stopped()
	}
	burst := time.Since(t0)
	prog.end(ph, fmt.Sprintf("%d of %d records in %s, %d twice", recs.total(), want, burst.Round(time.Millisecond), recs.dups()))

	var checked atomic.Int64
	ph = prog.begin("gap repair", n, func() int { return int(checked.Load()) }, nil)
	repaired := repair(ctx, op, boxes, recs, &checked)
	if ctx.Err() != nil {
		return stopped()
	}
	got, dups := recs.total(), recs.dups()
	prog.end(ph, fmt.Sprintf("%d records fetched from the boxes; %d of %d, %d twice", repaired, got, want, dups))
	if nodes != nil {
		lat2, err := group("g2", "group command after the kill")
		if err != nil {
			return err
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
	return nil
}

// teardown stops the links, par at once, then the rest (operator,
// brokers and their files: a minute for the 60 000 of a stalled NATS
// cluster's consumers). A link stops within ~3 s (its offline state,
// then the disconnect); what has not stopped after two minutes is left
// to the process's exit.
func teardown(prog *progress, boxes []*simBox, par int, rest func()) {
	var stopped atomic.Int64
	ph := prog.begin("teardown", len(boxes), func() int { return int(stopped.Load()) }, nil)
	done := make(chan struct{})
	go func() {
		sem := make(chan struct{}, par)
		var wg sync.WaitGroup
		for _, b := range boxes {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.stop()
				stopped.Add(1)
				<-sem
			}()
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
	}
	rest()
	prog.end(ph, fmt.Sprintf("%d of %d links stopped; brokers stopped, their files removed", stopped.Load(), len(boxes)))
}

// waitAllConnected waits until every box is connected, looking at each
// change of any box's link, or until timeout or ctx ends.
func waitAllConnected(ctx context.Context, timeout <-chan time.Time, changed <-chan struct{}, boxes []*simBox) bool {
	for connectedCount(boxes) < len(boxes) {
		select {
		case <-changed:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func connectedCount(boxes []*simBox) int {
	n := 0
	for _, b := range boxes {
		if b.link.Info().Connected {
			n++
		}
	}
	return n
}

// repair asks the boxes with a gap for what the broker lost.
func repair(ctx context.Context, op *fleet.Operator, boxes []*simBox, recs *recordCount, checked *atomic.Int64) int {
	n := 0
	for _, b := range boxes {
		if ctx.Err() != nil {
			break
		}
		checked.Add(1)
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
