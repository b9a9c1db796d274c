package config

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/boxagent/boxagent/bluetooth"
)

// SaveHeadsetAutoConnect sets auto_connect of the [[bluetooth.headset]]
// with address (a normalised address, as bluetooth.ParseAddress gives)
// in the config file at path, adding a table for it when the file has
// none, and returns the config now in the file. Only that one value (or
// the new table) changes in the text: comments and layout stay. The
// result must read back as the old config with only that change, else
// nothing is written (a file that spells its headsets as an inline array,
// say, is refused with a hint to edit it by hand). The write is atomic,
// mode 0600 (the file may hold keys). An invalid file is refused.
func SaveHeadsetAutoConnect(path, address string, on bool) (*Config, error) {
	return Edit(path, func(data []byte, old *Config) ([]byte, error) {
		want := *old
		hs := slices.Clone(old.Bluetooth.Headsets)
		i := slices.IndexFunc(hs, func(h bluetooth.Headset) bool { a, _ := bluetooth.ParseAddress(h.Address); return a == address })
		if i >= 0 {
			hs[i].AutoConnect = on
		} else {
			hs = append(hs, bluetooth.Headset{Address: address, AutoConnect: on})
		}
		want.Bluetooth.Headsets = hs
		text, err := editHeadsetAutoConnect(data, address, on)
		if err == nil {
			err = sameConfig(path, text, &want)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot save auto_connect of %s in %s: %w; set it by hand ([[bluetooth.headset]] address, auto_connect)", address, path, err)
		}
		return text, nil
	})
}

// editHeadsetAutoConnect rewrites the auto_connect value of the
// [[bluetooth.headset]] table whose address is address (inserting the
// key under the table's header when it lacks one), or appends such a
// table; every other byte stays.
func editHeadsetAutoConnect(data []byte, address string, on bool) ([]byte, error) {
	value := strconv.FormatBool(on)
	type table struct {
		body     int // offset just past the header line
		from, to int // the auto_connect value, when the table has one
	}
	var cur *table
	var found *table
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		var parts []string
		for it := e.Key(); it.Next(); {
			parts = append(parts, string(it.Node().Data))
		}
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			cur = nil
			if e.Kind == unstable.ArrayTable && slices.Equal(parts, []string{"bluetooth", "headset"}) {
				end := len(data)
				for it := e.Key(); it.Next(); {
					k := it.Node()
					if i := indexFrom(data, int(k.Raw.Offset), '\n'); i >= 0 {
						end = i + 1
					}
				}
				cur = &table{body: end, from: -1}
			}
		case unstable.KeyValue:
			if cur == nil || len(parts) != 1 {
				continue
			}
			v := e.Value()
			switch parts[0] {
			case "address":
				if a, err := bluetooth.ParseAddress(string(v.Data)); err == nil && a == address && v.Kind == unstable.String {
					found = cur
				}
			case "auto_connect":
				if v.Kind == unstable.Bool {
					cur.from, cur.to = int(v.Raw.Offset), int(v.Raw.Offset+v.Raw.Length)
				}
			}
		}
	}
	if err := p.Error(); err != nil {
		return nil, err
	}
	var out []byte
	switch {
	case found != nil && found.from >= 0:
		out = append(append(append(out, data[:found.from]...), value...), data[found.to:]...)
	case found != nil:
		out = append(append(append(out, data[:found.body]...), "auto_connect = "+value+"\n"...), data[found.body:]...)
	default:
		out = appendHeadset(data, address, "auto_connect = "+value)
	}
	return out, nil
}

// appendHeadset appends a [[bluetooth.headset]] table for address, with
// the key line kv, after a blank line; every other byte stays.
func appendHeadset(data []byte, address, kv string) []byte {
	out := append([]byte(nil), data...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	if len(out) > 0 {
		out = append(out, '\n')
	}
	return append(out, fmt.Sprintf("[[bluetooth.headset]]\naddress = %q\n%s\n", address, kv)...)
}

// SaveNewHeadset adds a [[bluetooth.headset]] for a headset just paired:
// its address (normalised) and the mode the audio domain gives it when
// it connects, mode = [bluetooth] default_mode (music unless set). A
// headset the file already has is left as the user wrote it. It reports
// whether it added the table and returns the config now in the file; the
// text is appended (comments and layout stay) and checked as
// SaveHeadsetAutoConnect's is.
func SaveNewHeadset(path, address string) (*Config, bool, error) {
	added := false
	cfg, err := Edit(path, func(data []byte, old *Config) ([]byte, error) {
		if _, ok := old.Bluetooth.Headset(address); ok {
			return data, nil
		}
		mode := old.Bluetooth.NewHeadsetMode()
		want := *old
		want.Bluetooth.Headsets = append(slices.Clone(old.Bluetooth.Headsets), bluetooth.Headset{Address: address, Mode: mode})
		text := appendHeadset(data, address, fmt.Sprintf("mode = %q", mode))
		if err := sameConfig(path, text, &want); err != nil {
			return nil, fmt.Errorf("cannot save headset %s in %s: %w; add it by hand ([[bluetooth.headset]] address, mode)", address, path, err)
		}
		added = true
		return text, nil
	})
	return cfg, added, err
}

// indexFrom is the index of the first c at or after from, or -1.
func indexFrom(data []byte, from int, c byte) int {
	for i := from; i < len(data); i++ {
		if data[i] == c {
			return i
		}
	}
	return -1
}
