package provision

import (
	"encoding/json"
	"fmt"
	"strings"
)

// parseYAML reads the block-style YAML subset cloud-init network-config
// files use: mappings, sequences (also "- key: value" items), plain and
// quoted scalars, flow sequences of scalars ([a, b]), {} and comments.
// Every scalar comes back a string; mappings are map[string]any,
// sequences []any. A document that starts with '{' is JSON (also valid
// YAML). Anchors, tags and block scalars (| >) are refused rather than
// misread. A small parser keeps a YAML library out of the static binary.
func parseYAML(data []byte) (any, error) {
	text := strings.TrimSpace(string(data))
	if strings.HasPrefix(text, "{") {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("cannot parse JSON: %w", err)
		}
		return stringify(v), nil
	}
	p := &yamlParser{}
	for i, raw := range strings.Split(string(data), "\n") {
		raw = strings.TrimRight(raw, " \t\r")
		if strings.HasPrefix(raw, "\t") {
			return nil, fmt.Errorf("line %d: tabs cannot indent YAML", i+1)
		}
		body := strings.TrimLeft(raw, " ")
		if body == "" || body[0] == '#' || body == "---" || body == "..." {
			continue
		}
		body, err := stripComment(body)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		p.lines = append(p.lines, yline{n: i + 1, indent: len(raw) - len(strings.TrimLeft(raw, " ")), text: body})
	}
	if len(p.lines) == 0 {
		return map[string]any{}, nil
	}
	v, err := p.node(p.lines[0].indent)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.lines) {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.i].n)
	}
	return v, nil
}

// stringify turns JSON numbers and booleans into the strings the YAML
// reader would return.
func stringify(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = stringify(x)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = stringify(x)
		}
		return t
	case nil:
		return nil
	case string:
		return t
	default:
		return fmt.Sprint(t)
	}
}

type yline struct {
	n, indent int
	text      string
}

type yamlParser struct {
	lines []yline
	i     int
}

func isItem(s string) bool { return s == "-" || strings.HasPrefix(s, "- ") }

func (p *yamlParser) node(indent int) (any, error) {
	if isItem(p.lines[p.i].text) {
		return p.seq(indent)
	}
	return p.mapping(indent)
}

func (p *yamlParser) mapping(indent int) (any, error) {
	m := map[string]any{}
	for p.i < len(p.lines) && p.lines[p.i].indent == indent && !isItem(p.lines[p.i].text) {
		l := p.lines[p.i]
		key, rest, err := splitKey(l.text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", l.n, err)
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("line %d: key %q twice", l.n, key)
		}
		p.i++
		switch {
		case rest != "":
			if m[key], err = scalarOrFlow(rest); err != nil {
				return nil, fmt.Errorf("line %d: %w", l.n, err)
			}
		case p.i < len(p.lines) && p.lines[p.i].indent > indent:
			if m[key], err = p.node(p.lines[p.i].indent); err != nil {
				return nil, err
			}
		case p.i < len(p.lines) && p.lines[p.i].indent == indent && isItem(p.lines[p.i].text):
			// "key:" followed by "- item" at the same indentation.
			if m[key], err = p.seq(indent); err != nil {
				return nil, err
			}
		default:
			m[key] = nil
		}
	}
	if p.i < len(p.lines) && p.lines[p.i].indent > indent {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.i].n)
	}
	return m, nil
}

func (p *yamlParser) seq(indent int) (any, error) {
	var s []any
	for p.i < len(p.lines) && p.lines[p.i].indent == indent && isItem(p.lines[p.i].text) {
		l := p.lines[p.i]
		rest := strings.TrimLeft(strings.TrimPrefix(l.text, "-"), " ")
		switch {
		case rest == "":
			p.i++
			if p.i < len(p.lines) && p.lines[p.i].indent > indent {
				v, err := p.node(p.lines[p.i].indent)
				if err != nil {
					return nil, err
				}
				s = append(s, v)
			} else {
				s = append(s, nil)
			}
		case isKeyLine(rest):
			// "- key: value": a mapping whose keys line up after "- ".
			p.lines[p.i] = yline{n: l.n, indent: l.indent + len(l.text) - len(rest), text: rest}
			v, err := p.mapping(p.lines[p.i].indent)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		default:
			v, err := scalarOrFlow(rest)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", l.n, err)
			}
			s = append(s, v)
			p.i++
		}
	}
	return s, nil
}

func isKeyLine(s string) bool {
	_, _, err := splitKey(s)
	return err == nil
}

// splitKey splits "key: rest" or "key:"; the key may be quoted.
func splitKey(s string) (key, rest string, err error) {
	if s[0] == '"' || s[0] == '\'' {
		k, n, err := quoted(s)
		if err != nil {
			return "", "", err
		}
		after := strings.TrimLeft(s[n:], " ")
		if !strings.HasPrefix(after, ":") {
			return "", "", fmt.Errorf("want ':' after the key %q", k)
		}
		return k, strings.TrimSpace(after[1:]), nil
	}
	if i := strings.Index(s, ": "); i > 0 {
		return s[:i], strings.TrimSpace(s[i+2:]), nil
	}
	if strings.HasSuffix(s, ":") && len(s) > 1 {
		return s[:len(s)-1], "", nil
	}
	return "", "", fmt.Errorf("not a key: value line: %q", s)
}

// scalarOrFlow reads a value: a quoted or plain scalar, [a, b] or {}.
func scalarOrFlow(s string) (any, error) {
	switch {
	case s == "{}":
		return map[string]any{}, nil
	case strings.HasPrefix(s, "["):
		if !strings.HasSuffix(s, "]") {
			return nil, fmt.Errorf("a flow sequence must end on its line: %q", s)
		}
		inner := strings.TrimSpace(s[1 : len(s)-1])
		var out []any
		for inner != "" {
			var item string
			if inner[0] == '"' || inner[0] == '\'' {
				v, n, err := quoted(inner)
				if err != nil {
					return nil, err
				}
				item, inner = v, strings.TrimSpace(inner[n:])
			} else {
				j := strings.IndexByte(inner, ',')
				if j < 0 {
					j = len(inner)
				}
				item, inner = strings.TrimSpace(inner[:j]), inner[j:]
			}
			out = append(out, item)
			inner = strings.TrimSpace(strings.TrimPrefix(inner, ","))
		}
		return out, nil
	case strings.HasPrefix(s, "{"), strings.HasPrefix(s, "&"), strings.HasPrefix(s, "*"), strings.HasPrefix(s, "!"),
		strings.HasPrefix(s, "|"), strings.HasPrefix(s, ">"):
		return nil, fmt.Errorf("YAML feature not supported here (flow mappings, anchors, tags, block scalars): %q", s)
	case s[0] == '"' || s[0] == '\'':
		v, n, err := quoted(s)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(s[n:]) != "" {
			return nil, fmt.Errorf("text after a quoted value: %q", s)
		}
		return v, nil
	}
	if s == "~" || s == "null" {
		return nil, nil
	}
	return s, nil
}

// quoted reads a quoted scalar at the start of s and returns it and the
// bytes it took.
func quoted(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case q == '\'' && c == '\'' && i+1 < len(s) && s[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == q:
			return b.String(), i + 1, nil
		case q == '"' && c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case '"', '\\', '/':
				b.WriteByte(s[i])
			default:
				return "", 0, fmt.Errorf("escape \\%c not supported", s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated quoted value: %s", s)
}

// stripComment drops a " #" comment that is not inside quotes.
func stripComment(s string) (string, error) {
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == '\\' && q == '"' {
				i++
			} else if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			if i == 0 || s[i-1] == ' ' || s[i-1] == '[' || s[i-1] == ',' || s[i-1] == '-' {
				q = c
			}
		case c == '#' && i > 0 && s[i-1] == ' ':
			return strings.TrimRight(s[:i], " "), nil
		}
	}
	return s, nil
}
