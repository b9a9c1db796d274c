package network

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// AgentResolvConf is where the agent writes the merged DNS servers of the
// uplinks (ResolvConf); /etc/resolv.conf links to it on a box where no
// other program keeps that file.
const AgentResolvConf = "/run/boxagent/resolv.conf"

// Owner of /etc/resolv.conf: which program keeps the file the box's
// programs read, and so how the uplinks' DNS servers reach them.
type Owner string

const (
	// OwnerNobody: no file, or a link to a file no daemon keeps (such as
	// Buildroot's ../tmp/resolv.conf, written by udhcpc's script the agent
	// replaces): /etc/resolv.conf is the agent's to link.
	OwnerNobody Owner = "nobody"
	// OwnerAgent: /etc/resolv.conf links to AgentResolvConf.
	OwnerAgent Owner = "boxagent"
	// OwnerResolved: systemd-resolved's stub or its file; the agent gives
	// it the servers per link over D-Bus (Resolved).
	OwnerResolved Owner = "systemd-resolved"
	// OwnerResolvconf: Debian's resolvconf or openresolv.
	OwnerResolvconf Owner = "resolvconf"
	// OwnerNetworkManager and OwnerConnman: another network manager runs
	// the box's DNS (and, likely, its links).
	OwnerNetworkManager Owner = "NetworkManager"
	OwnerConnman        Owner = "connman"
	// OwnerFile: a regular file someone wrote (an image's builder, an
	// admin, a DHCP client's script); the agent leaves it alone.
	OwnerFile Owner = "a file"
)

// resolvOwners are the link targets daemons keep, by folder.
var resolvOwners = []struct {
	dir   string
	owner Owner
}{
	{"/run/systemd/resolve/", OwnerResolved},
	{"/run/resolvconf/", OwnerResolvconf},
	{"/etc/resolvconf/run/", OwnerResolvconf},
	{"/run/NetworkManager/", OwnerNetworkManager},
	{"/var/run/NetworkManager/", OwnerNetworkManager},
	{"/run/connman/", OwnerConnman},
	{"/var/run/connman/", OwnerConnman},
}

// ResolvConfOwner says who keeps /etc/resolv.conf from what is there:
// exists false for no file, link the symlink's target ("" for a regular
// file). A relative target is read from /etc.
func ResolvConfOwner(exists bool, link string) Owner {
	switch {
	case !exists:
		return OwnerNobody
	case link == "":
		return OwnerFile
	}
	if !path.IsAbs(link) {
		link = path.Join("/etc", link)
	}
	link = path.Clean(link)
	if link == AgentResolvConf || link == "/var"+AgentResolvConf {
		return OwnerAgent
	}
	for _, o := range resolvOwners {
		if strings.HasPrefix(link, o.dir) {
			return o.owner
		}
	}
	return OwnerNobody
}

// ResolvConfOwnerIn says who keeps etc/resolv.conf in root (the box's /,
// or an image being provisioned).
func ResolvConfOwnerIn(root *os.Root) (Owner, error) {
	const name = "etc/resolv.conf"
	fi, err := root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ResolvConfOwner(false, ""), nil
	case err != nil:
		return "", fmt.Errorf("cannot inspect /%s: %w", name, err)
	case fi.Mode()&fs.ModeSymlink == 0:
		return ResolvConfOwner(true, ""), nil
	}
	link, err := root.Readlink(name)
	if err != nil {
		return "", fmt.Errorf("cannot read the link /%s: %w", name, err)
	}
	return ResolvConfOwner(true, link), nil
}
