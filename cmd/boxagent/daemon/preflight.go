package daemon

import (
	"github.com/boxagent/boxagent/board"
	"github.com/boxagent/boxagent/cmd/boxagent/config"
	"github.com/boxagent/boxagent/cmd/boxagent/paths"
	"github.com/boxagent/boxagent/firmware"
)

// Preflight makes the checks of a valid config that need more than the
// file, as serve and its domains make them: the board is known (detected
// the same way), every firmware key file loads, and the board's recovery
// gets a verification policy. `boxagent config check` runs it, so a file it
// passes is not refused at start or at the first fw add.
func Preflight(p paths.Paths, file string, cfg *config.Config) config.Errors {
	var errs config.Errors
	add := func(key, msg string) { errs = append(errs, &config.Error{File: file, Key: key, Msg: msg}) }
	a := &agent{paths: p}
	det, _, err := a.detectBoard(cfg)
	if err != nil {
		add("board", err.Error()+" (boxagent board list shows the known boards)")
		return errs
	}
	fc := fwConfig(cfg)
	for _, k := range fc.Keys {
		if _, err := firmware.LoadCerts(k); err != nil {
			add("firmware.keys", err.Error())
		}
	}
	fw := det.Profile.Firmware
	if len(errs) == 0 && fw.Method == board.FirmwareUSBStick {
		keys := append(append([]string(nil), fw.Keys...), fc.Keys...)
		if _, err := firmware.NewPolicy(fw.Verify, keys, fw.RequiredEntries); err != nil {
			add("firmware.keys", "board "+det.Profile.ID+": "+err.Error())
		}
	}
	return errs
}
