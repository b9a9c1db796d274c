package daemon

import (
	"context"
	"fmt"
	"strings"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/journal"
)

// journalHealth is the journal's line in status: degraded while a damaged
// journal moved aside at this start, or at an earlier one, is kept. It is
// read from the folder at start and when one comes or goes (followJournal),
// not at every call.
func (a *agent) journalHealth() apitype.Subsystem {
	if sub := a.journalSub.Load(); sub != nil {
		return *sub
	}
	return a.readJournalHealth()
}

func (a *agent) readJournalHealth() apitype.Subsystem {
	sub := apitype.Subsystem{Name: "journal", State: apitype.StateOK}
	if detail := a.journalDamage(); detail != "" {
		sub.State, sub.Detail = apitype.StateDegraded, detail
	}
	return sub
}

// followJournal reads the journal's line now and again whenever a
// damaged journal beside it comes or goes, until ctx ends. Without the
// watch the line stays as read now (and the doctor reads the folder).
func (a *agent) followJournal(ctx context.Context) {
	reread := func() {
		sub := a.readJournalHealth()
		a.journalSub.Store(&sub)
		a.statusChanged()
	}
	if err := journal.WatchQuarantined(ctx, a.paths.JournalDB(), reread); err != nil {
		a.log.Warn("status will not follow damaged journals removed from now on", "err", err)
	}
	reread() // after the watch is set: nothing between the two is missed
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
