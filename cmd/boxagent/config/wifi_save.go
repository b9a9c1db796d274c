package config

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/boxagent/boxagent/wifi"
)

// SaveWiFiNetworks changes the [[wifi.network]] entries of the config
// file at path to what update makes of them, and returns the config now
// in the file. The file is edited as text: the [[wifi.network]] tables
// are replaced where the first of them stood (or added at the end), so
// comments, layout and every other table stay as they were. When the
// file's shape does not allow that (the networks written inline, say),
// it is rewritten whole through the TOML encoder, which loses its
// comments. Either way the result is parsed and checked to be the old
// config with only the networks changed before it replaces the file,
// atomically (temporary file, fsync, rename, fsync of the folder), mode
// 0600: it holds the keys. An invalid file is refused and left alone. A
// missing file is created.
func SaveWiFiNetworks(path string, update func([]wifi.Network) []wifi.Network) (*Config, error) {
	return Edit(path, func(data []byte, old *Config) ([]byte, error) {
		want := *old
		section := wifi.Config{}
		if old.WiFi != nil {
			section = *old.WiFi
		}
		section.Networks = update(slices.Clone(section.Networks))
		want.WiFi = &section
		if err := section.ValidateAll(); err != nil {
			return nil, err
		}
		text, err := editWiFiNetworks(data, section.Networks)
		if err == nil {
			err = sameConfig(path, text, &want)
		}
		if err == nil {
			return text, nil
		}
		// The text edit did not give the wanted config: write it whole.
		if text, err = toml.Marshal(&want); err != nil {
			return nil, fmt.Errorf("cannot encode the config: %w", err)
		}
		if err := sameConfig(path, text, &want); err != nil {
			return nil, fmt.Errorf("cannot save Wi-Fi networks: %w", err)
		}
		return text, nil
	})
}

// sameConfig checks that text parses to want.
func sameConfig(name string, text []byte, want *Config) error {
	got, err := Parse(name, text)
	if err != nil {
		return err
	}
	if got.Revision() != want.Revision() {
		return errors.New("the edited file does not read back as intended")
	}
	return nil
}

// savedNetwork is one [[wifi.network]] as written: only what is set.
type savedNetwork struct {
	SSID     string `toml:"ssid"`
	PSK      string `toml:"psk,omitempty"`
	Security string `toml:"security,omitempty"`
	Hidden   bool   `toml:"hidden,omitempty"`
	Priority int    `toml:"priority,omitempty"`
}

// editWiFiNetworks replaces the [[wifi.network]] tables of a TOML
// document with nets, keeping everything else byte for byte.
func editWiFiNetworks(data []byte, nets []wifi.Network) ([]byte, error) {
	var blocks bytes.Buffer
	for _, n := range nets {
		body, err := toml.Marshal(savedNetwork{n.SSID, n.PSK, n.Security, n.Hidden, n.Priority})
		if err != nil {
			return nil, err
		}
		blocks.WriteString("[[wifi.network]]\n")
		blocks.Write(body)
		blocks.WriteString("\n")
	}
	type span struct{ from, to int }
	var cut []span
	var p unstable.Parser
	p.Reset(data)
	open := -1 // start of the wifi.network table being read, or -1
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind != unstable.Table && e.Kind != unstable.ArrayTable {
			continue
		}
		var parts []string
		first := -1
		it := e.Key()
		for it.Next() {
			k := it.Node()
			if first < 0 {
				first = int(k.Raw.Offset)
			}
			parts = append(parts, string(k.Data))
		}
		start := lineStart(data, first)
		if open >= 0 {
			cut = append(cut, span{open, trimTrailingComments(data, open, start)})
			open = -1
		}
		if len(parts) >= 2 && parts[0] == "wifi" && parts[1] == "network" {
			open = start
		}
	}
	if err := p.Error(); err != nil {
		return nil, err
	}
	if open >= 0 {
		cut = append(cut, span{open, len(data)})
	}
	var out bytes.Buffer
	if len(cut) == 0 {
		out.Write(data)
		if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
			out.WriteString("\n")
		}
		if len(data) > 0 && len(nets) > 0 {
			out.WriteString("\n")
		}
		out.Write(blocks.Bytes())
		return out.Bytes(), nil
	}
	at := 0
	for i, c := range cut {
		out.Write(data[at:c.from])
		if i == 0 {
			out.Write(blocks.Bytes())
		}
		at = c.to
	}
	out.Write(data[at:])
	return out.Bytes(), nil
}

// lineStart is the offset of the start of the line holding offset i.
func lineStart(data []byte, i int) int {
	if i < 0 {
		return len(data)
	}
	return bytes.LastIndexByte(data[:i], '\n') + 1
}

// trimTrailingComments moves end back over the blank and comment lines
// before it, down to from: they introduce the next table, not this one.
func trimTrailingComments(data []byte, from, end int) int {
	for end > from {
		prev := bytes.LastIndexByte(data[:end-1], '\n') + 1
		if prev < from {
			break
		}
		line := bytes.TrimSpace(data[prev:end])
		if len(line) != 0 && line[0] != '#' {
			break
		}
		end = prev
	}
	return end
}
