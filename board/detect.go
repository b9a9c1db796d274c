package board

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// Detection is the profile in effect, why, and what the box said about
// itself.
type Detection struct {
	Profile Profile `json:"profile"`
	// Reason is one line for people: `device-tree model "…" matched
	// raspberrypi-4`, "no match: generic profile for arm64", `set in
	// config: board = "x"`.
	Reason     string   `json:"reason"`
	Model      string   `json:"model,omitempty"`
	Compatible []string `json:"compatible,omitempty"`
	DMIProduct string   `json:"dmi_product,omitempty"`
	DMIBoard   string   `json:"dmi_board,omitempty"`
}

// Auto is the override that asks for detection, as does "".
const Auto = "auto"

// ErrUnknownBoard is matched by errors.Is for an override naming no
// profile; the error itself is an *UnknownBoardError.
var ErrUnknownBoard = errors.New("unknown board")

// UnknownBoardError is an override naming no profile.
type UnknownBoardError struct {
	ID    string
	Known []string
}

func (e *UnknownBoardError) Error() string {
	return fmt.Sprintf("unknown board %q; known boards: %s", e.ID, strings.Join(e.Known, ", "))
}

// Is makes errors.Is(err, ErrUnknownBoard) true.
func (e *UnknownBoardError) Is(target error) bool { return target == ErrUnknownBoard }

// ErrNoProfile is returned when no rule matches and there is no generic
// profile for the architecture.
var ErrNoProfile = errors.New("no board profile fits this box")

// Files Detect reads, relative to the host root.
const (
	modelFile      = "proc/device-tree/model"
	compatibleFile = "proc/device-tree/compatible"
	dmiProductFile = "sys/class/dmi/id/product_name"
	dmiBoardFile   = "sys/class/dmi/id/board_name"
)

// Detect chooses the profile of this box. host is the host root
// (os.DirFS("/") on a box); a missing file means the box does not have
// it. The order is: override (unless "" or "auto"), device-tree model,
// device-tree compatible (most specific entry first), DMI, and last the
// generic profile for arch (runtime.GOARCH, from the caller). The
// Detection carries what was read even when err is not nil.
func Detect(host fs.FS, profiles []Profile, override string, arch string) (Detection, error) {
	var d Detection
	var err error
	if d.Model, err = readFact(host, modelFile); err != nil {
		return d, err
	}
	compatible, err := readFact(host, compatibleFile)
	if err != nil {
		return d, err
	}
	for _, c := range strings.Split(compatible, "\x00") {
		if c = strings.TrimSpace(c); c != "" {
			d.Compatible = append(d.Compatible, c)
		}
	}
	if d.DMIProduct, err = readFact(host, dmiProductFile); err != nil {
		return d, err
	}
	if d.DMIBoard, err = readFact(host, dmiBoardFile); err != nil {
		return d, err
	}

	if override != "" && override != Auto {
		p, ok := Find(profiles, override)
		if !ok {
			return d, &UnknownBoardError{ID: override, Known: IDs(profiles)}
		}
		d.Profile, d.Reason = p, fmt.Sprintf("set in config: board = %q", override)
		return d, nil
	}
	if p, ok := matchModel(profiles, d.Model); ok {
		d.Profile, d.Reason = p, fmt.Sprintf("device-tree model %q matched %s", d.Model, p.ID)
		return d, nil
	}
	for _, c := range d.Compatible {
		for _, p := range profiles {
			if slices.Contains(p.Match.Compatible, c) {
				d.Profile, d.Reason = p, fmt.Sprintf("device-tree compatible %q matched %s", c, p.ID)
				return d, nil
			}
		}
	}
	for _, p := range profiles {
		if why, ok := matchDMI(p.Match, d.DMIProduct, d.DMIBoard); ok {
			d.Profile, d.Reason = p, why+" matched "+p.ID
			return d, nil
		}
	}
	for _, p := range profiles {
		if p.Generic() && p.Arch == arch {
			d.Profile, d.Reason = p, "no match: generic profile for "+arch
			return d, nil
		}
	}
	return d, fmt.Errorf("cannot choose a board profile: no rule matches and none is generic for %s; set board in the config or add a profile: %w", arch, ErrNoProfile)
}

// readFact reads a small file of the host, without trailing NULs and
// white space; "" when the file does not exist.
func readFact(host fs.FS, name string) (string, error) {
	b, err := fs.ReadFile(host, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cannot read /%s: %w", name, err)
	}
	return strings.TrimRight(string(b), "\x00 \t\n"), nil
}

// matchModel finds the profile with the longest model substring in model:
// the most specific rule wins ("Raspberry Pi 4" over "Raspberry Pi").
func matchModel(profiles []Profile, model string) (Profile, bool) {
	var best Profile
	bestSub := ""
	if model == "" {
		return best, false
	}
	for _, p := range profiles {
		for _, sub := range p.Match.Model {
			if sub != "" && strings.Contains(model, sub) && len(sub) > len(bestSub) {
				best, bestSub = p, sub
			}
		}
	}
	return best, bestSub != ""
}

// matchDMI matches when every DMI rule given has an entry equal to what
// the box says.
func matchDMI(m Match, product, board string) (string, bool) {
	if len(m.DMIProduct) == 0 && len(m.DMIBoard) == 0 {
		return "", false
	}
	var why []string
	if len(m.DMIProduct) > 0 {
		if product == "" || !slices.Contains(m.DMIProduct, product) {
			return "", false
		}
		why = append(why, fmt.Sprintf("product %q", product))
	}
	if len(m.DMIBoard) > 0 {
		if board == "" || !slices.Contains(m.DMIBoard, board) {
			return "", false
		}
		why = append(why, fmt.Sprintf("board %q", board))
	}
	return "DMI " + strings.Join(why, " and "), true
}
