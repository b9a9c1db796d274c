package provision

import (
	"fmt"
	"os"

	"github.com/boxagent/boxagent/network"
)

// planResolvConf links /etc/resolv.conf to the agent's file when no other
// program keeps it (network.ResolvConfOwner): the box's programs then use
// the uplinks' DNS servers. systemd-resolved, resolvconf, NetworkManager
// or connman keep their link, and a regular file stays (someone wrote it);
// the note says what the agent does there.
func planResolvConf(r *os.Root) (*entry, string, error) {
	owner, err := network.ResolvConfOwnerIn(r)
	if err != nil {
		return nil, "", err
	}
	switch owner {
	case network.OwnerNobody:
		return &entry{path: "etc/resolv.conf", kind: 'l', link: network.AgentResolvConf,
			note: "no program keeps it: the uplinks' DNS servers, as the agent writes them"}, "", nil
	case network.OwnerAgent:
		return nil, "", nil
	case network.OwnerResolved:
		return nil, "", nil // the agent gives resolved each uplink's servers over D-Bus
	case network.OwnerFile:
		return nil, "/etc/resolv.conf is a file of the image: kept; the uplinks' DNS servers are in " +
			network.AgentResolvConf + " (link it there to use them)", nil
	default:
		return nil, fmt.Sprintf("/etc/resolv.conf is kept by %s: kept; the uplinks' DNS servers are in %s", owner, network.AgentResolvConf), nil
	}
}
