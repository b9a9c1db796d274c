package cli

import (
	"context"
	"fmt"
	"os/user"
	"strconv"

	"github.com/boxagent/boxagent/cmd/boxagent/daemon"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/firmware"
)

// agentUser is the user boxagent.service runs as; the mount helper gives
// it the files of a stick.
const agentUser = "boxagent"

func mountHelperCmd() *Command {
	return &Command{
		Name: "mount-helper", Usage: "mount|unmount rw-sdX1|ro-sdX1",
		Short: "mount or unmount a USB stick for the agent (run as root by boxagent-mount@.service)",
		Long: `PID 1 runs this as root for the agent, which runs as its own user: the
instance names the partition and the mode, and the helper derives the rest
(the stick must be a USB disk; the mount point is /run/boxagent/usb/<the
stick's id>; nosuid, nodev, noexec; FAT files owned by user boxagent). It
is not meant to be run by hand.`,
		Verbs:  []string{"mount", "unmount"},
		Helper: true,
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			if len(args) != 2 || args[0] != "mount" && args[0] != "unmount" {
				return usagef("want mount or unmount and an instance like rw-sda1")
			}
			hp := daemon.FirmwareHostPaths(paths.Default)
			if args[0] == "unmount" {
				return firmware.HelperUnmount(ctx, hp, args[1])
			}
			owner, err := agentOwner()
			if err != nil {
				return err
			}
			dir, err := firmware.HelperMount(ctx, hp, args[1], owner)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "mounted %s at %s\n", args[1], dir)
			return nil
		},
	}
}

// agentOwner is the user and group boxagent.service runs as, whom the
// root helpers serve.
func agentOwner() (firmware.Owner, error) {
	u, err := user.Lookup(agentUser)
	if err != nil {
		return firmware.Owner{}, fmt.Errorf("cannot find the agent's user %q: %w", agentUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return firmware.Owner{UID: uid, GID: gid}, nil
}
