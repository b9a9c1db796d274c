package provision

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
)

// The agent's user and the groups its unit names (SupplementaryGroups=):
// systemd refuses to start a unit whose groups do not exist.
const (
	AgentUser = "boxagent"
	agentHome = "/var/lib/boxagent"
)

// AgentGroups are the supplementary groups of boxagent.service.
var AgentGroups = []string{"bluetooth", "netdev", "pulse-access"}

// accounts is what planUsers found or made in the image.
type accounts struct {
	uid, gid int    // of the agent's user
	rootHome string // root's home, for authorized_keys
}

// colon reads a passwd-style file into its lines' fields.
type colon struct {
	raw   []byte
	lines [][]string
}

func readColon(r *os.Root, name string) (*colon, bool, error) {
	data, err := r.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return &colon{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cannot read /%s: %w", name, err)
	}
	c := &colon{raw: data}
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			c.lines = append(c.lines, strings.Split(l, ":"))
		}
	}
	return c, true, nil
}

func (c *colon) find(name string) []string {
	for _, f := range c.lines {
		if f[0] == name {
			return f
		}
	}
	return nil
}

// ids are the numbers in field i.
func (c *colon) ids(i int) []int {
	var out []int
	for _, f := range c.lines {
		if len(f) > i {
			if n, err := strconv.Atoi(f[i]); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

func (c *colon) add(line string) {
	if len(c.raw) > 0 && c.raw[len(c.raw)-1] != '\n' {
		c.raw = append(c.raw, '\n')
	}
	c.raw = append(c.raw, line+"\n"...)
	c.lines = append(c.lines, strings.Split(line, ":"))
}

// planUsers makes sure the image has the agent's user and groups, the way
// `useradd --system` would: system ids counted down from 999 (as
// systemd-sysusers does), the user's uid equal to its group's gid when
// free, no password, no shell. Only lines are added; none is changed.
func planUsers(r *os.Root) ([]entry, accounts, error) {
	var acc accounts
	passwd, ok, err := readColon(r, "etc/passwd")
	if err != nil {
		return nil, acc, err
	}
	if !ok {
		return nil, acc, errors.New("the root has no /etc/passwd: is it a root filesystem?")
	}
	group, _, err := readColon(r, "etc/group")
	if err != nil {
		return nil, acc, err
	}
	shadow, hasShadow, err := readColon(r, "etc/shadow")
	if err != nil {
		return nil, acc, err
	}
	gshadow, hasGshadow, err := readColon(r, "etc/gshadow")
	if err != nil {
		return nil, acc, err
	}
	acc.rootHome = "/root"
	if f := passwd.find("root"); len(f) >= 6 && strings.HasPrefix(f[5], "/") {
		acc.rootHome = f[5]
	}
	used := append(passwd.ids(2), group.ids(2)...)
	free := func() (int, error) {
		for id := 999; id >= 100; id-- {
			if !slices.Contains(used, id) {
				used = append(used, id)
				return id, nil
			}
		}
		return 0, errors.New("no free system id from 100 to 999 in /etc/passwd and /etc/group")
	}
	changedP, changedG := false, false
	for _, name := range append([]string{AgentUser}, AgentGroups...) {
		if g := group.find(name); g != nil {
			continue
		}
		gid := -1
		if name == AgentUser {
			if u := passwd.find(AgentUser); len(u) > 3 {
				gid, _ = strconv.Atoi(u[3]) // the user exists: its group takes its gid
			}
		}
		if gid < 0 {
			if gid, err = free(); err != nil {
				return nil, acc, err
			}
		}
		group.add(fmt.Sprintf("%s:x:%d:", name, gid))
		if hasGshadow && gshadow.find(name) == nil {
			gshadow.add(name + ":!::")
		}
		changedG = true
	}
	g := group.find(AgentUser)
	acc.gid, _ = strconv.Atoi(g[2])
	if u := passwd.find(AgentUser); u != nil {
		if len(u) < 4 {
			return nil, acc, fmt.Errorf("/etc/passwd: the %s line is malformed", AgentUser)
		}
		acc.uid, _ = strconv.Atoi(u[2])
	} else {
		acc.uid = acc.gid
		if slices.Contains(passwd.ids(2), acc.uid) {
			if acc.uid, err = free(); err != nil {
				return nil, acc, err
			}
		}
		shell := "/bin/false"
		for _, s := range []string{"/usr/sbin/nologin", "/sbin/nologin"} {
			if _, err := r.Stat(s[1:]); err == nil {
				shell = s
				break
			}
		}
		passwd.add(fmt.Sprintf("%s:x:%d:%d:boxagent agent:%s:%s", AgentUser, acc.uid, acc.gid, agentHome, shell))
		if hasShadow && shadow.find(AgentUser) == nil {
			shadow.add(AgentUser + ":!::::::")
		}
		changedP = true
	}
	var es []entry
	keep := func(name string, c *colon, mode fs.FileMode) {
		es = append(es, entry{path: name, kind: 'f', mode: mode, keep: true, data: c.raw})
	}
	if changedP {
		keep("etc/passwd", passwd, 0o644)
		if hasShadow {
			keep("etc/shadow", shadow, 0o640)
		}
	}
	if changedG {
		keep("etc/group", group, 0o644)
		if hasGshadow {
			keep("etc/gshadow", gshadow, 0o640)
		}
	}
	return es, acc, nil
}
