package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/fleet/fleettest"
)

// natsBoxes is how many boxes the cluster test runs: a third of them at
// the node it kills.
const natsBoxes = 24

// TestNATSClusterNodeKilled kills the node a third of the boxes are
// connected to in the middle of a group command and of a burst of
// records: every box comes back on another node, runs the command exactly
// once, and every record arrives.
func TestNATSClusterNodeKilled(t *testing.T) {
	nodes := fleettest.StartNATSCluster(t)
	opKey, opPub := operatorKey(t)
	// A guard, not a timed assertion: under a loaded CI machine the
	// cluster's raft needs many seconds to settle after the kill (CI saw
	// boxes lose their new node twice more and answer after the 60 s
	// this guard had); what is asserted is that each box answers and
	// runs the command once.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var boxes []*testBox
	var ids []string
	for i := range natsBoxes {
		id := fmt.Sprintf("nbox-%02d", i)
		// Home node first, then the others: the fail-over order.
		var brokers []string
		for j := range 3 {
			brokers = append(brokers, nodes[(i+j)%3].MQTT)
		}
		cfg := config.Fleet{Brokers: brokers, ID: id, Groups: []string{"all"}, Routes: fleetRoutes, OperatorKeys: []string{opPub}, Keepalive: 10}
		boxes = append(boxes, newTestBox(t, cfg, Identity{ID: id}))
		ids = append(ids, id)
	}
	// The operator on the node that stays.
	op, err := DialOperator(ctx, OperatorOptions{Brokers: []string{nodes[2].MQTT, nodes[1].MQTT}, Key: opKey, Resend: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	// The archive of records: a persistent session, so that a record is
	// not lost between the broker and it while a node dies.
	archive, err := DialOperator(ctx, OperatorOptions{Brokers: []string{nodes[1].MQTT, nodes[2].MQTT}, ClientID: "archive", Persistent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer archive.Close()
	archiveOp := op
	seen := &collector{}
	go archive.Watch(ctx, "+", []string{"state", "ops"}, seen.add)
	waitFor(t, 60*time.Second, "every box online", func() bool {
		for _, b := range boxes {
			if !b.link.Info().Connected {
				return false
			}
		}
		return true
	})

	var wg sync.WaitGroup
	start := time.Now()
	replies := map[string]int{}
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		left, err := op.SendGroup(ctx, "all", ids, Command{Method: "POST", Path: "/api/v1/test/work", Body: json.RawMessage(`{"n":"rollout"}`), WindowMS: 3000},
			func(r Reply) { mu.Lock(); replies[r.Device] = r.Status; mu.Unlock() })
		if err != nil {
			t.Errorf("group command: %d boxes did not answer: %v (%v)", len(left), left, err)
			for _, b := range boxes {
				for _, id := range left {
					if b.id == id {
						t.Logf("%s: %+v runs %d\n%s", id, b.link.Info(), b.runsOf("rollout"), b.log)
					}
				}
			}
		}
	}()
	for _, b := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				b.record(t, "test.burst")
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	time.Sleep(400 * time.Millisecond)
	nodes[0].Kill()
	killed := time.Now()
	t.Logf("killed %s %s after the command and the burst began", nodes[0].Name, killed.Sub(start).Round(time.Millisecond))
	wg.Wait()
	t.Logf("every box answered %s after the kill", time.Since(killed).Round(time.Millisecond))

	missing := func() (out []string) {
		for _, b := range boxes {
			all, _ := b.store.After(0, 1000)
			got := seen.records(b.id)
			for _, op := range all {
				if got[op.ID] == 0 {
					out = append(out, fmt.Sprintf("%s/%d (link %+v)", b.id, op.ID, b.link.Info()))
				}
			}
		}
		return out
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	// What the broker acknowledged and then lost, the archive asks the
	// box for: ids have no gaps, so it knows what it lacks.
	lost := missing()
	for _, b := range boxes {
		have := map[uint64]bool{}
		for id := range seen.records(b.id) {
			have[id] = true
		}
		ops, err := archiveOp.Missing(ctx, b.id, have)
		if err != nil {
			t.Fatalf("asking %s for its missing records: %v", b.id, err)
		}
		for _, o := range ops {
			raw, _ := json.Marshal(o)
			seen.add(Message{Device: b.id, Kind: "ops", Payload: raw})
		}
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("%d records never arrived: %v", len(m), m)
	}
	t.Logf("%d records acknowledged by the broker but never delivered, fetched from their boxes: %v", len(lost), lost)
	t.Logf("every record arrived %s after the kill", time.Since(killed).Round(time.Millisecond))
	dups := 0
	for i, b := range boxes {
		if in := b.link.Info(); !in.Connected || in.Broker == nodes[0].MQTT {
			t.Errorf("%s (home %s): %+v", b.id, nodes[i%3].Name, in)
		}
		if n := b.runsOf("rollout"); n != 1 {
			t.Errorf("%s ran the group command %d times", b.id, n)
		}
		if replies[b.id] != http.StatusOK {
			t.Errorf("%s answered %d", b.id, replies[b.id])
		}
		for _, n := range seen.records(b.id) {
			dups += n - 1
		}
	}
	// At least once: a record acknowledged by the dead node but not yet
	// under the cursor may come twice; receivers know records by id.
	t.Logf("%d boxes, %d records each, %d delivered twice", natsBoxes, 10+1, dups)
}
