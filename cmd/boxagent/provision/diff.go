package provision

import (
	"crypto/sha256"
	"fmt"
	"io"
	"strings"

	"github.com/boxagent/boxagent/cmd/boxagent/config"
)

// WriteDiff prints the changes as a unified-style diff, paths relative to
// the target root. Secret values (psk, password, password_hash) show as
// fingerprints; a binary shows its size and SHA-256.
func (r *Result) WriteDiff(w io.Writer) error {
	for _, c := range r.Changes {
		e := c.e
		switch {
		case e.kind == 'd':
			fmt.Fprintf(w, "%s %s/ (mode %04o, owner %d:%d)\n", c.Action, c.Path, e.mode, e.uid, e.gid)
			continue
		case e.kind == 'l':
			was := ""
			if c.oldLink != "" {
				was = " (was -> " + c.oldLink + ")"
			} else if c.existed {
				was = " (was a file)"
			}
			fmt.Fprintf(w, "symlink %s -> %s%s\n", c.Path, e.link, was)
			continue
		}
		if !strings.Contains(c.Action, "update") && !strings.Contains(c.Action, "create") {
			fmt.Fprintf(w, "%s %s\n", c.Action, c.Path)
			continue
		}
		from := "a" + c.Path
		if !c.existed {
			from = "/dev/null"
		}
		fmt.Fprintf(w, "--- %s\n+++ b%s (mode %04o, owner %d:%d)\n", from, c.Path, e.mode, e.uid, e.gid)
		if e.note != "" {
			fmt.Fprintf(w, "(%s)\n", e.note)
			continue
		}
		if e.binary {
			sum := sha256.Sum256(e.data)
			fmt.Fprintf(w, "Binary: %d bytes, sha256 %x\n", len(e.data), sum)
			continue
		}
		old, neu := string(c.old), string(e.data)
		if e.secret {
			old, neu = hideSecrets(old), hideSecrets(neu)
		}
		if c.oldLink != "" {
			old = ""
			fmt.Fprintf(w, "(was a symlink -> %s)\n", c.oldLink)
		}
		unified(w, splitLines(old), splitLines(neu))
	}
	return nil
}

// space is what a secret line may have around its key, '=' and value.
const space = " \t\n\f\r"

// secretLine splits a line that sets psk, password or password_hash to a
// quoted value: the white space, the key, '=' with white space around it
// (head); the opening quote, ' or "; the value, without a newline; the
// closing quote, ' or " again (not necessarily the same), the last byte
// but for white space, which is dropped.
func secretLine(l string) (head, opening, value, closing string, ok bool) {
	rest := strings.TrimLeft(l, space)
	key := ""
	for _, k := range []string{"psk", "password_hash", "password"} {
		if strings.HasPrefix(rest, k) {
			key = k
			break
		}
	}
	rest, eq := strings.CutPrefix(strings.TrimLeft(rest[len(key):], space), "=")
	rest = strings.TrimLeft(rest, space)
	end := len(strings.TrimRight(rest, space)) - 1 // the closing quote
	if key == "" || !eq || end < 1 || !isQuote(rest[0]) || !isQuote(rest[end]) || strings.Contains(rest[1:end], "\n") {
		return "", "", "", "", false
	}
	return l[:len(l)-len(rest)], rest[:1], rest[1:end], rest[end : end+1], true
}

func isQuote(c byte) bool { return c == '\'' || c == '"' }

func hideSecrets(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if head, opening, value, closing, ok := secretLine(l); ok {
			lines[i] = head + opening + config.Fingerprint(value) + closing
		}
	}
	return strings.Join(lines, "\n")
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// unified writes the hunks turning a into b with 3 lines of context. The
// files are small (config, passwd): a quadratic LCS is enough.
func unified(w io.Writer, a, b []string) {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte // ' ', '-', '+'
		text string
		ai   int // lines of a and b before this one
		bi   int
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i], i, j})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', a[i], i, j})
			i++
		default:
			ops = append(ops, op{'+', b[j], i, j})
			j++
		}
	}
	const ctx = 3
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		start := max(k-ctx, 0)
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*ctx {
				end = min(end+ctx, run)
				break
			}
			end = run
		}
		var na, nb int
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
		}
		fmt.Fprintf(w, "@@ -%s +%s @@\n", hunkRange(ops[start].ai, na), hunkRange(ops[start].bi, nb))
		for _, o := range ops[start:end] {
			fmt.Fprintf(w, "%c%s\n", o.kind, o.text)
		}
		k = end
	}
}

func hunkRange(before, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", before)
	}
	if n == 1 {
		return fmt.Sprintf("%d", before+1)
	}
	return fmt.Sprintf("%d,%d", before+1, n)
}
