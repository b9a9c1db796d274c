package daemon

import (
	"fmt"
	"strings"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/firmware"
)

// storeCheck is the doctor's look at the artifact store: entries moved
// aside as damaged (firmware.Store.Damaged).
func storeCheck(damaged []firmware.Damaged) apitype.Check {
	c := apitype.Check{Name: "artifact store", Result: apitype.CheckOK, Detail: "no damaged entry"}
	if len(damaged) == 0 {
		return c
	}
	var parts []string
	for _, d := range damaged {
		p := d.SHA256[:12] + " moved to " + d.MovedTo
		if d.Reason != "" {
			p += " (" + d.Reason + ")"
		}
		parts = append(parts, p)
	}
	c.Result = apitype.CheckWarn
	c.Detail = fmt.Sprintf("%d damaged entries moved aside: %s", len(damaged), strings.Join(parts, "; "))
	c.Fix = "add the package again (boxagent fw add); keep the moved files for a bug report if wanted, then remove them"
	return c
}

// storeCheck of the running agent's store; none without one.
func (a *agent) storeCheck() apitype.Check {
	for _, d := range a.domains {
		if f, ok := d.(*firmwareDomain); ok {
			f.mu.Lock()
			store := f.store
			f.mu.Unlock()
			if store != nil {
				return storeCheck(store.Damaged())
			}
		}
	}
	return apitype.Check{Name: "artifact store", Result: apitype.CheckWarn, Detail: "the firmware domain has no store"}
}
