// Package paths puts every filesystem location boxagent touches behind one
// value, so a test (or `boxagent serve --root DIR`) can move all of them
// under a temporary directory.
package paths

import "path/filepath"

// Paths locates boxagent's files. Root prefixes what boxagent owns (config,
// state, runtime); HostRoot prefixes what the kernel and the system own
// (/proc, /sys, /dev, mount points). Empty means "/".
type Paths struct {
	Root     string
	HostRoot string
}

// Default is the layout of an installed box.
var Default = Paths{}

func join(root, p string) string {
	if root == "" {
		return p
	}
	return filepath.Join(root, p)
}

// Own returns the location of a path boxagent owns, under Root.
func (p Paths) Own(abs string) string { return join(p.Root, abs) }

// Host returns the location of a system path, under HostRoot.
func (p Paths) Host(abs string) string { return join(p.HostRoot, abs) }

// ConfigFile is the desired state: /etc/boxagent/config.toml.
func (p Paths) ConfigFile() string { return p.Own("/etc/boxagent/config.toml") }

// BoardsDir holds extra board profiles supplied by the integrator.
func (p Paths) BoardsDir() string { return p.Own("/etc/boxagent/boards") }

// RuntimeDir holds the sockets and other per-boot files.
func (p Paths) RuntimeDir() string { return p.Own("/run/boxagent") }

// StickMounts is where sticks are mounted, one folder per stick: the agent
// stages there and the mount helper (root) mounts there.
func (p Paths) StickMounts() string { return p.Own("/run/boxagent/usb") }

// PPPoESockets holds a socket per PPPoE session, where the session's root
// helper fetches its settings from the agent.
func (p Paths) PPPoESockets() string { return p.Own("/run/boxagent/pppoe") }

// Socket is the local API's unix socket, used by the CLI.
func (p Paths) Socket() string { return p.Own("/run/boxagent/api.sock") }

// StateDir holds what must survive a reboot.
func (p Paths) StateDir() string { return p.Own("/var/lib/boxagent") }

// JournalDB is the operations journal.
func (p Paths) JournalDB() string { return p.Own("/var/lib/boxagent/journal.db") }

// HTTPPasswordFile holds the page password the agent made at its first
// start when the config sets none (mode 0600).
func (p Paths) HTTPPasswordFile() string { return p.Own("/var/lib/boxagent/http-password") }

// HTTPCertFile and HTTPKeyFile are the page's self-signed certificate
// and its key (0600), made when the page listens beyond loopback.
func (p Paths) HTTPCertFile() string { return p.Own("/var/lib/boxagent/http-cert.pem") }

// HTTPKeyFile: see HTTPCertFile.
func (p Paths) HTTPKeyFile() string { return p.Own("/var/lib/boxagent/http-key.pem") }

// ArtifactsDir is the content-addressed store of firmware packages.
func (p Paths) ArtifactsDir() string { return p.Own("/var/lib/boxagent/artifacts") }

// Proc is procfs.
func (p Paths) Proc() string { return p.Host("/proc") }

// Sys is sysfs.
func (p Paths) Sys() string { return p.Host("/sys") }
