package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/boxagent/boxagent/cmd/boxagent/client"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/fleet"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
	"github.com/boxagent/boxagent/internal/atomicfile"
)

// fleetFlags are the operator's way to the broker.
type fleetFlags struct {
	brokers              []string
	ca, cert, key        string
	signKey, prefix      string
	device, group        string
	window, wait, resend time.Duration
}

func fleetCmd() *Command {
	f := &fleetFlags{prefix: config.DefaultFleetPrefix, resend: 5 * time.Second}
	return &Command{
		Name: "fleet", Usage: "[flags] list|watch|keygen|send|<command> …",
		Short: "the boxes of a fleet through its MQTT broker: list, watch, and any command on a box or a group",
		Long: `The operator's side of [fleet]: the same commands as on a box, carried
as signed commands through the broker and answered by the box's API.

  boxagent fleet keygen --sign-key op.key     make an operator key (its public half goes in [fleet] operator_keys)
  boxagent fleet list                         every box the broker holds a state of
  boxagent fleet watch [--device ID]          states, statuses and journal records as they come
  boxagent fleet --device ID status           any command of a box: status, history, net show, fw add URL …
  boxagent fleet send --group G --window 10m -- fw add URL
                                              one command to every box of a group, each after a random delay

Flags go before the verb; BOXAGENT_FLEET_BROKER, _CA, _CERT, _KEY and
_SIGN_KEY stand in for them.`,
		Verbs: []string{"list", "watch", "keygen", "send"},
		Flags: f.register,
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			f.fromEnv(e)
			if len(args) == 0 {
				return usagef("missing a verb or a command")
			}
			switch args[0] {
			case "keygen", "list", "watch", "send":
				// The verb's flags follow it: parse them too.
				fs := pflag.NewFlagSet("boxagent fleet "+args[0], pflag.ContinueOnError)
				fs.SetOutput(io.Discard)
				f.register(fs, o)
				fs.StringVar(&o.Socket, "socket", o.Socket, "") // every command's; unused here
				if err := fs.Parse(args[1:]); err != nil {
					return usagef("%v", err)
				}
				args = append(args[:1], fs.Args()...)
			}
			switch args[0] {
			case "keygen":
				return fleetKeygen(e, f)
			case "list":
				return fleetList(ctx, e, o, f)
			case "watch":
				return fleetWatch(ctx, e, o, f)
			case "send":
				args = args[1:]
				if f.group != "" {
					return fleetSendGroup(ctx, e, o, f, args)
				}
			}
			if f.device == "" {
				return usagef("which box? --device ID (or send --group G)")
			}
			if len(args) == 0 || find(args[0]) == nil || args[0] == "fleet" || args[0] == "serve" || args[0] == "provision" {
				return usagef("not a command to run on a box: %q", strings.Join(args, " "))
			}
			op, err := f.dial(ctx)
			if err != nil {
				return err
			}
			defer op.Close()
			rem := &remote{rt: &client.FleetTransport{Operator: op, Device: f.device}, name: "fleet box " + f.device}
			if code := run(ctx, e, args, rem); code != ExitOK {
				return exitCode(code)
			}
			return nil
		},
	}
}

// register adds the flags with their current values as defaults, so the
// verb's flags can be parsed after the command's without losing them.
func (f *fleetFlags) register(fs *pflag.FlagSet, o *Opts) {
	// The command's own flags (status --json) come after its name.
	fs.SetInterspersed(false)
	fs.StringSliceVar(&f.brokers, "broker", f.brokers, "broker URL, mqtts://host:8883 (again for fail-over)")
	fs.StringVar(&f.ca, "ca", f.ca, "PEM file of the broker's CA")
	fs.StringVar(&f.cert, "cert", f.cert, "the operator's client certificate (PEM)")
	fs.StringVar(&f.key, "key", f.key, "the operator's client key (PEM)")
	fs.StringVar(&f.signKey, "sign-key", f.signKey, "the operator's ed25519 signing key (boxagent fleet keygen)")
	fs.StringVar(&f.prefix, "prefix", f.prefix, "topic prefix of the fleet")
	fs.StringVar(&f.device, "device", f.device, "the box to run the command on")
	fs.StringVar(&f.group, "group", f.group, "send: the group of boxes to run the command on")
	fs.DurationVar(&f.window, "window", f.window, "send --group: each box waits a random delay within this window")
	fs.DurationVar(&f.wait, "wait", f.wait, "how long to wait for answers (default: 1 min, a group's window more)")
	fs.DurationVar(&f.resend, "resend", f.resend, "send an unanswered command again after this long")
	fs.BoolVar(&o.JSON, "json", o.JSON, "print JSON instead of a table")
}

// exitCode passes on the exit code of a command that has already
// reported its error.
type exitCode int

func (c exitCode) Error() string { return "exit " + strconv.Itoa(int(c)) }

func (f *fleetFlags) fromEnv(e *Env) {
	set := func(v *string, name string) {
		if *v == "" {
			*v = e.Getenv(name)
		}
	}
	if len(f.brokers) == 0 && e.Getenv("BOXAGENT_FLEET_BROKER") != "" {
		f.brokers = strings.Split(e.Getenv("BOXAGENT_FLEET_BROKER"), ",")
	}
	set(&f.ca, "BOXAGENT_FLEET_CA")
	set(&f.cert, "BOXAGENT_FLEET_CERT")
	set(&f.key, "BOXAGENT_FLEET_KEY")
	set(&f.signKey, "BOXAGENT_FLEET_SIGN_KEY")
}

// dial connects to the broker as the operator; the TLS files are read as
// a box reads its own (LoadIdentity), the id being the operator's CN.
func (f *fleetFlags) dial(ctx context.Context) (*fleet.Operator, error) {
	if len(f.brokers) == 0 {
		return nil, usagef("which broker? --broker mqtts://host:8883")
	}
	id, err := fleet.LoadIdentity(config.Fleet{CA: f.ca, Cert: f.cert, Key: f.key, ID: "operator"})
	if err != nil {
		return nil, err
	}
	var key ed25519.PrivateKey
	if f.signKey != "" {
		if key, err = readSignKey(f.signKey); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return fleet.DialOperator(ctx, fleet.OperatorOptions{Brokers: f.brokers, TLS: id.TLS, Prefix: f.prefix, Key: key, Resend: f.resend})
}

// readSignKey reads a key made by fleet keygen: base64 of the ed25519
// seed, one line.
func readSignKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the signing key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("cannot read the signing key %s: not base64 of a %d-byte ed25519 seed", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

func fleetKeygen(e *Env, f *fleetFlags) error {
	if f.signKey == "" {
		return usagef("where to? --sign-key FILE")
	}
	if _, err := os.Stat(f.signKey); err == nil {
		return fmt.Errorf("%s exists: a new key would lock its boxes out; remove it first", f.signKey)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(f.signKey, []byte(base64.StdEncoding.EncodeToString(priv.Seed())+"\n"), 0o600, atomicfile.Options{}); err != nil {
		return fmt.Errorf("cannot write the signing key: %w", err)
	}
	fmt.Fprintf(e.Stderr, "signing key written to %s (keep it secret); for [fleet] operator_keys:\n", f.signKey)
	fmt.Fprintln(e.Stdout, base64.StdEncoding.EncodeToString(pub))
	return nil
}

// devices connects and reads every box's retained state, by id; the
// caller closes the operator.
func (f *fleetFlags) devices(ctx context.Context) (*fleet.Operator, []fleet.Presence, error) {
	op, err := f.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	devs, err := op.Devices(ctx, time.Second)
	if err != nil {
		op.Close()
		return nil, nil, err
	}
	slices.SortFunc(devs, func(a, b fleet.Presence) int { return strings.Compare(a.ID, b.ID) })
	return op, devs, nil
}

func fleetList(ctx context.Context, e *Env, o *Opts, f *fleetFlags) error {
	op, devs, err := f.devices(ctx)
	if err != nil {
		return err
	}
	defer op.Close()
	if o.JSON {
		return printJSON(e.Stdout, devs)
	}
	t := newTable(e.Stdout, "ID", "STATE", "SINCE", "VERSION", "GROUPS", "CERTIFICATE UNTIL")
	for _, d := range devs {
		state, until := "offline", ""
		if d.Online {
			state = "online"
		}
		if d.CertNotAfter != nil {
			until = d.CertNotAfter.UTC().Format(time.DateOnly)
		}
		t.row(d.ID, state, stamp(d.Time), d.Version, strings.Join(d.Groups, ","), until)
	}
	return t.flush()
}

func fleetWatch(ctx context.Context, e *Env, o *Opts, f *fleetFlags) error {
	op, err := f.dial(ctx)
	if err != nil {
		return err
	}
	defer op.Close()
	dev := f.device
	if dev == "" {
		dev = "+"
	}
	return op.Watch(ctx, dev, []string{"state", "status", "ops"}, func(m fleet.Message) {
		if o.JSON {
			b, _ := json.Marshal(map[string]any{"device": m.Device, "kind": m.Kind, "data": json.RawMessage(m.Payload)})
			fmt.Fprintln(e.Stdout, string(b))
			return
		}
		fmt.Fprintf(e.Stdout, "%s %-12s %-6s %s\n", stamp(time.Now()), m.Device, m.Kind, watchLine(m))
	})
}

// watchLine is one message in a few words.
func watchLine(m fleet.Message) string {
	switch m.Kind {
	case "state":
		var p fleet.Presence
		if json.Unmarshal(m.Payload, &p) == nil {
			if p.Online {
				return "online, version " + p.Version
			}
			return "offline"
		}
	case "ops":
		var op journal.Operation
		if json.Unmarshal(m.Payload, &op) == nil {
			line := fmt.Sprintf("operation %d %s %s (%s)", op.ID, op.Kind, op.State, op.Origin)
			if op.Error != nil {
				line += ": " + op.Error.Message
			}
			return line
		}
	case "status":
		return "status changed"
	}
	return string(m.Payload)
}

// fleetSendGroup turns a command line into one group command: the
// command runs here with a transport that takes its call instead of
// making it, so no command is written twice.
func fleetSendGroup(ctx context.Context, e *Env, o *Opts, f *fleetFlags, args []string) error {
	if len(args) == 0 || find(args[0]) == nil {
		return usagef("which command? send --group G -- fw add URL")
	}
	capture := &client.CaptureTransport{}
	quiet := &Env{Stdin: e.Stdin, Stdout: discard{}, Stderr: discard{}, Getenv: e.Getenv}
	if code := run(ctx, quiet, args, &remote{rt: capture, name: "group " + f.group}); capture.Method == "" {
		return fmt.Errorf("%q makes no API call to send (exit %d)", strings.Join(args, " "), code)
	}
	op, devs, err := f.devices(ctx)
	if err != nil {
		return err
	}
	defer op.Close()
	var members []string
	for _, d := range devs {
		if slices.Contains(d.Groups, f.group) {
			members = append(members, d.ID)
		}
	}
	if len(members) == 0 {
		return fmt.Errorf("no box of group %q has a state at the broker", f.group)
	}
	fmt.Fprintf(e.Stderr, "%s %s to %d boxes of %s, within %s\n", capture.Method, capture.Path, len(members), f.group, f.window)
	wait := f.wait
	if wait == 0 {
		wait = time.Minute + f.window
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	failed := 0
	left, err := op.SendGroup(ctx, f.group, members, fleet.Command{Method: capture.Method, Path: capture.Path, Body: capture.Body, WindowMS: f.window.Milliseconds()}, func(r fleet.Reply) {
		if r.Status >= 400 {
			failed++
		}
		if o.JSON {
			b, _ := json.Marshal(r)
			fmt.Fprintln(e.Stdout, string(b))
			return
		}
		fmt.Fprintf(e.Stdout, "%-16s %d %s\n", r.Device, r.Status, replyLine(r))
	})
	if len(left) > 0 {
		slices.Sort(left)
		return fmt.Errorf("%d boxes did not answer within %s: %s", len(left), wait, strings.Join(left, " "))
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d boxes answered with an error", failed, len(members))
	}
	return nil
}

func replyLine(r fleet.Reply) string {
	var v struct {
		journal.Operation
		Err *journal.Failure `json:"error"`
	}
	if json.Unmarshal(r.Body, &v) != nil {
		return string(r.Body)
	}
	switch {
	case v.Err != nil:
		return v.Err.Message + " (" + v.Err.Code + ")"
	case r.Status == http.StatusAccepted:
		return fmt.Sprintf("accepted: operation %d (boxagent fleet watch follows it)", v.ID)
	case v.Kind != "":
		return fmt.Sprintf("operation %d %s %s", v.ID, v.Kind, v.State)
	}
	return string(r.Body)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
