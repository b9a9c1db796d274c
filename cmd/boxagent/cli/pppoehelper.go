package cli

import (
	"context"

	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/network"
)

func pppoeHelperCmd() *Command {
	return &Command{
		Name: "pppoe-helper", Usage: "INSTANCE", Helper: true,
		Short: "run one PPPoE session's pppd for the agent (run as root by boxagent-pppoe@.service)",
		Long: `PID 1 runs this as root for the agent, which runs as its own user: the
helper connects to the agent's socket for the session, reads the session's
link, user, password and MTU, checks them, and becomes pppd with its output
on the socket. pppd's path, plugins and options are the helper's, never the
agent's. It is not meant to be run by hand.`,
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) != 1 {
				return usagef("want the session's instance (boxagent-pppoe@INSTANCE.service)")
			}
			owner, err := agentOwner()
			if err != nil {
				return err
			}
			return network.RunPPPoEHelper(args[0], paths.Default.PPPoESockets(), owner.UID)
		},
	}
}
