package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// pos is a 1-based place in the document.
type pos struct{ line, col int }

// places says where each key of a document is. Key paths are written as
// in errors: parts joined with ".", array elements as "[i]", parts that
// are not bare keys quoted: `network.uplink[0].vlan`, `a."b.c"`.
type places struct {
	of map[string]pos // key path → where it first appears
	at map[pos]string // start of a key or value → its key path
}

// mapKeys parses data with go-toml's AST parser. It stops quietly at a
// syntax error: it is only asked about documents that decoded, or for the
// place of the decoder's own error.
func mapKeys(data []byte) places {
	pl := places{of: map[string]pos{}, at: map[pos]string{}}
	var p unstable.Parser
	p.Reset(data)
	arrays := map[string]int{} // array of tables (path with indexes) → elements so far
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, first := keyParts(&p, e)
			path := ""
			for i, part := range parts {
				path = joinKey(path, part)
				if i == len(parts)-1 && e.Kind == unstable.ArrayTable {
					n := arrays[path]
					arrays[path] = n + 1
					pl.note(path, first)
					path = fmt.Sprintf("%s[%d]", path, n)
				} else if n, ok := arrays[path]; ok {
					// [a.b] after [[a]] is in the last element of a.
					path = fmt.Sprintf("%s[%d]", path, n-1)
				}
				pl.note(path, first)
			}
			pl.at[first] = path
			table = path
		case unstable.KeyValue:
			pl.keyValue(&p, e, table)
		}
	}
	return pl
}

func (pl places) keyValue(p *unstable.Parser, kv *unstable.Node, table string) {
	parts, first := keyParts(p, kv)
	path := table
	for _, part := range parts {
		path = joinKey(path, part)
		pl.note(path, first)
	}
	pl.at[first] = path
	pl.value(p, kv.Value(), path)
}

// value notes the places of the elements of arrays and inline tables.
func (pl places) value(p *unstable.Parser, v *unstable.Node, path string) {
	if v.Raw.Length > 0 {
		here := place(p, v.Raw)
		if _, ok := pl.at[here]; !ok {
			pl.at[here] = path
		}
	}
	switch v.Kind {
	case unstable.Array:
		it := v.Children()
		for i := 0; it.Next(); i++ {
			el := fmt.Sprintf("%s[%d]", path, i)
			if n := it.Node(); n.Raw.Length > 0 {
				pl.note(el, place(p, n.Raw))
			}
			pl.value(p, it.Node(), el)
		}
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			pl.keyValue(p, it.Node(), path)
		}
	}
}

// note keeps the first place of a path.
func (pl places) note(path string, at pos) {
	if _, ok := pl.of[path]; !ok {
		pl.of[path] = at
	}
}

// find is the place of a key path, or of its nearest parent that is in the
// file (a key left at its default has no place of its own).
func (pl places) find(path string) pos {
	for path != "" {
		if at, ok := pl.of[path]; ok {
			return at
		}
		path = parentKey(path)
	}
	return pos{}
}

func keyParts(p *unstable.Parser, n *unstable.Node) ([]string, pos) {
	var parts []string
	var first pos
	it := n.Key()
	for it.Next() {
		k := it.Node()
		if parts == nil {
			first = place(p, k.Raw)
		}
		parts = append(parts, quoteKey(string(k.Data)))
	}
	return parts, first
}

func place(p *unstable.Parser, r unstable.Range) pos {
	s := p.Shape(r)
	return pos{s.Start.Line, s.Start.Column}
}

func joinKey(path, part string) string {
	if path == "" {
		return part
	}
	return path + "." + part
}

// quoteKey writes a key part as TOML would need it: bare when it can be.
func quoteKey(k string) string {
	if k == "" {
		return `""`
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return strconv.Quote(k)
		}
	}
	return k
}

// parentKey drops the last part of a key path: "a.b[0].c" → "a.b[0]" →
// "a.b" → "a" → "".
func parentKey(path string) string {
	cut, quoted := 0, false
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && (c == '.' || c == '['):
			cut = i
		}
	}
	return strings.TrimSuffix(path[:cut], ".")
}
