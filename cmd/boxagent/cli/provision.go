package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/boxagent/boxagent/cmd/boxagent/provision"
)

// provisionCmd is the one command that runs without a daemon: it writes
// into a root filesystem, mounted at flash time or the box's own at first
// boot.
func provisionCmd() *Command {
	var (
		boot, binary         string
		dryRun, yes, firstBt bool
	)
	return &Command{
		Name: "provision", Usage: "--root DIR [--boot DIR] [--dry-run] [--yes] [--install-binary PATH] FILE | --first-boot [--boot DIR]",
		Short: "prepare a box from provision.toml: offline into a mounted image, or at first boot",
		Long: `Validates provision.toml whole, then writes /etc/boxagent/config.toml
(0600), /etc/hostname, /etc/timezone and /etc/localtime, root's SSH
authorized_keys, the boxagent user and groups, enables the units (the
links systemctl enable makes), and with --install-binary installs the
binary (and the units if the image has none). Wi-Fi networks, uplinks
(their MACs too), headsets and firmware keys go into config.toml, where the
agent reads them at its first start; inline certificates are installed under
/etc/boxagent/keys/. Nothing is written when anything is wrong; a second run with
the same file changes nothing. Each run that changes something is an
operation in the image's journal (boxagent history on the box).

--root DIR      the mounted root filesystem of the image; this machine's own
                root (/) is refused unless --yes
--boot DIR      the boot partition: a cloud-init NoCloud network-config there
                is merged in (offline it is only read)
--dry-run       print the changes as a diff, write nothing
--first-boot    apply provision.toml and/or network-config from the boot
                partition (/boot/firmware, /boot, or --boot) to this system,
                then rename them *.applied-<UTC stamp> so they never run
                twice; what boxagent-firstboot.service runs`,
		Flags: func(fs *pflag.FlagSet, o *Opts) {
			jsonFlag(fs, o)
			fs.StringVar(&o.Root, "root", "", "the target root filesystem")
			fs.StringVar(&boot, "boot", "", "the boot partition")
			fs.BoolVar(&dryRun, "dry-run", false, "show the changes as a diff, write nothing")
			fs.BoolVar(&yes, "yes", false, "allow the running system as --root")
			fs.StringVar(&binary, "install-binary", "", "install this boxagent binary as /usr/bin/boxagent")
			fs.BoolVar(&firstBt, "first-boot", false, "apply the boot partition's provision.toml to this system, once")
		},
		Run: func(ctx context.Context, e *Env, o *Opts, args []string) error {
			opts := provision.Options{Root: o.Root, DryRun: dryRun, Yes: yes, InstallBinary: binary}
			if o.Root == "" || o.Root == "/" {
				opts.SetHostname = func(h string) error { return syscall.Sethostname([]byte(h)) }
			}
			if firstBt {
				if len(args) != 0 || binary != "" {
					return usagef("--first-boot takes no FILE and no --install-binary")
				}
				return firstBoot(e, o, opts, boot)
			}
			if len(args) != 1 {
				return usagef("provision takes one FILE (or --first-boot)")
			}
			if o.Root == "" {
				return usagef("--root DIR is required: the mounted root filesystem of the image")
			}
			opts.SetHostname = nil // offline: the image's hostname is its file
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("cannot read %s: %w", args[0], err)
			}
			f, err := provision.Parse(args[0], data)
			if err != nil {
				return err
			}
			var notes []string
			if boot != "" {
				nc, err := readNetworkConfig(filepath.Join(boot, provision.NetworkConfigName))
				if err != nil {
					return err
				}
				if nc != nil {
					f.Merge(nc)
					notes = nc.Notes
					if err := f.Validate(args[0] + " + " + filepath.Join(boot, provision.NetworkConfigName)); err != nil {
						return err
					}
				}
			}
			opts.Source = args[0]
			res, err := provision.Apply(f, opts)
			if err != nil {
				return provisionError(err)
			}
			res.Notes = append(notes, res.Notes...)
			return printProvision(e, o, res, args[0])
		},
	}
}

func readNetworkConfig(p string) (*provision.NetworkConfig, error) {
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", p, err)
	}
	nc, err := provision.ParseNetworkConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return nc, nil
}

func firstBoot(e *Env, o *Opts, opts provision.Options, boot string) error {
	dirs := provision.BootDirs
	if boot != "" {
		dirs = []string{boot}
	}
	res, err := provision.FirstBoot(dirs, opts)
	if errors.Is(err, provision.ErrNothingToDo) {
		fmt.Fprintf(e.Stderr, "%v (looked in %v): nothing to do\n", err, dirs)
		return nil
	}
	if err != nil {
		return provisionError(err)
	}
	if o.JSON {
		return printJSON(e.Stdout, res)
	}
	if err := printProvision(e, o, res.Result, res.Dir); err != nil {
		return err
	}
	for from, to := range res.Renamed {
		fmt.Fprintf(e.Stdout, "renamed %s -> %s: it will not run again\n", from, filepath.Base(to))
	}
	return nil
}

func provisionError(err error) error {
	if errors.Is(err, provision.ErrRunningSystem) {
		return fmt.Errorf("%w\nhint: at flash time, mount the image and pass its root: --root /mnt/rootfs", err)
	}
	return err
}

func printProvision(e *Env, o *Opts, res *provision.Result, source string) error {
	for _, n := range res.Notes {
		fmt.Fprintf(e.Stderr, "note: %s\n", n)
	}
	if o.JSON {
		return printJSON(e.Stdout, res)
	}
	if res.DryRun {
		if err := res.WriteDiff(e.Stdout); err != nil {
			return err
		}
		fmt.Fprintf(e.Stderr, "%d changes to %s; dry run: nothing written\n", len(res.Changes), res.Root)
		return nil
	}
	if len(res.Changes) == 0 {
		fmt.Fprintf(e.Stdout, "nothing to change: %s already matches %s\n", res.Root, source)
		return nil
	}
	t := newTable(e.Stdout, "ACTION", "PATH")
	for _, c := range res.Changes {
		t.row(c.Action, c.Path)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "provisioned %s: %d changes, operation %d in %s\n", res.Root, len(res.Changes), res.Operation,
		filepath.Join(res.Root, "var/lib/boxagent/journal.db"))
	return nil
}
