package daemon

import (
	"strings"
	"testing"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/network"
)

func TestResolverCheck(t *testing.T) {
	up := &network.ResolvedState{Present: true, Links: 2}
	refused := &network.ResolvedState{Present: true, Err: "Access denied"}
	for _, tc := range []struct {
		owner  network.Owner
		st     *network.ResolvedState
		hook   bool
		result string
		has    string
	}{
		{network.OwnerAgent, nil, false, apitype.CheckOK, "the agent's"},
		{network.OwnerResolved, up, false, apitype.CheckOK, "on 2 link(s)"},
		{network.OwnerResolved, refused, false, apitype.CheckFail, "Access denied"},
		{network.OwnerResolved, nil, false, apitype.CheckWarn, "not running"},
		{network.OwnerResolved, &network.ResolvedState{}, false, apitype.CheckWarn, "not running"},
		{network.OwnerNobody, nil, false, apitype.CheckWarn, "missing"},
		{network.OwnerFile, nil, false, apitype.CheckWarn, "a file the agent does not write"},
		{network.OwnerNetworkManager, up, false, apitype.CheckWarn, "NetworkManager's"},
		{network.OwnerResolvconf, nil, true, apitype.CheckOK, "boxagent-resolvconf.path"},
		{network.OwnerResolvconf, nil, false, apitype.CheckWarn, "not installed"},
	} {
		c := resolverCheck(tc.owner, tc.st, tc.hook)
		if c.Result != tc.result || !strings.Contains(c.Detail, tc.has) {
			t.Errorf("%s, %+v: %s %q, want %s with %q", tc.owner, tc.st, c.Result, c.Detail, tc.result, tc.has)
		}
		if c.Result != apitype.CheckOK && c.Fix == "" {
			t.Errorf("%s: %s without a fix", tc.owner, c.Result)
		}
	}
}
