package fleettest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Node is one node of the test cluster.
type Node struct {
	Name string
	MQTT string // its MQTT URL
	cmd  *exec.Cmd
	http int
}

// StartNATSCluster runs three nats-server nodes on loopback with
// JetStream and MQTT, the MQTT state streams at 3 replicas (the lab
// spike's configuration), and waits until MQTT answers.
func StartNATSCluster(t T) []*Node {
	t.Helper()
	bin := NeedBroker(t, "nats-server")
	dir := t.TempDir()
	var routes []string
	type ports struct{ client, cluster, http, mqtt int }
	ps := make([]ports, 3)
	for i := range ps {
		ps[i] = ports{FreePort(t), FreePort(t), FreePort(t), FreePort(t)}
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ps[i].cluster))
	}
	rj, _ := json.Marshal(routes)
	var nodes []*Node
	for i, p := range ps {
		name := fmt.Sprintf("n%d", i+1)
		conf := filepath.Join(dir, name+".conf")
		os.WriteFile(conf, []byte(fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q, max_memory_store: 256MB, max_file_store: 1GB }
cluster { name: fleet, listen: 127.0.0.1:%d, routes: %s }
mqtt { listen: 127.0.0.1:%d, stream_replicas: 3 }
`, name, p.client, p.http, filepath.Join(dir, name), p.cluster, rj, p.mqtt)), 0o600)
		cmd := exec.Command(bin, "-c", conf, "-l", filepath.Join(dir, name+".log"))
		if err := cmd.Start(); err != nil {
			t.Fatalf("%v", err)
		}
		n := &Node{Name: name, MQTT: fmt.Sprintf("mqtt://127.0.0.1:%d", p.mqtt), cmd: cmd, http: p.http}
		t.Cleanup(func() { n.Kill() })
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		WaitFor(t, 30*time.Second, n.Name+" JetStream", func() bool {
			r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", n.http))
			if err == nil {
				r.Body.Close()
			}
			return err == nil && r.StatusCode == 200
		})
	}
	// The first MQTT connection creates the $MQTT_ streams, seconds on a
	// fresh cluster: one QoS 1 publish before the boxes.
	warm := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(nodes[0].MQTT).SetClientID("warm").SetProtocolVersion(4).SetConnectRetry(true))
	warm.Connect()
	WaitFor(t, 60*time.Second, "the MQTT streams", func() bool {
		tok := warm.Publish("warm/up", 1, false, "x")
		return tok.WaitTimeout(5*time.Second) && tok.Error() == nil
	})
	warm.Disconnect(0)
	return nodes
}

// PID is the node's process id.
func (n *Node) PID() int { return n.cmd.Process.Pid }

// Kill SIGKILLs the node.
func (n *Node) Kill() {
	if n.cmd.ProcessState == nil {
		n.cmd.Process.Signal(syscall.SIGKILL)
		n.cmd.Wait()
	}
}

// WaitFor polls a condition of the test's (never the link's).
func WaitFor(t T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
