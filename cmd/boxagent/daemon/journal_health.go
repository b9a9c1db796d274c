package daemon

import (
	"fmt"
	"strings"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// journalHealth is the journal's line in status: degraded while a damaged
// journal moved aside at this start, or at an earlier one, is kept.
func (a *agent) journalHealth() apitype.Subsystem {
	sub := apitype.Subsystem{Name: "journal", State: apitype.StateOK}
	if detail := a.journalDamage(); detail != "" {
		sub.State, sub.Detail = apitype.StateDegraded, detail
	}
	return sub
}

// journalCheck is the doctor's check of the journal.
func (a *agent) journalCheck() apitype.Check {
	c := apitype.Check{Name: "journal", Result: apitype.CheckOK, Detail: a.paths.JournalDB()}
	if detail := a.journalDamage(); detail != "" {
		c.Result, c.Detail = apitype.CheckWarn, detail
		c.Fix = "keep the moved file for a bug report if wanted, then remove it; the history before it is in that file only"
	}
	return c
}

func (a *agent) journalDamage() string {
	var parts []string
	if d := a.damage; d != nil {
		parts = append(parts, fmt.Sprintf("damaged at start (%s): moved to %s, a new journal started", d.Reason, d.MovedTo))
	}
	var older []string
	for _, p := range journal.Quarantined(a.paths.JournalDB()) {
		if a.damage == nil || p != a.damage.MovedTo {
			older = append(older, p)
		}
	}
	if len(older) > 0 {
		parts = append(parts, "damaged journals kept from earlier starts: "+strings.Join(older, " "))
	}
	return strings.Join(parts, "; ")
}
