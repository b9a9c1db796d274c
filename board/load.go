package board

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/boxagent/boxagent/internal/errlist"
)

//go:embed profiles/*.toml
var builtinFS embed.FS

// SourceBuiltin is the Source of an embedded profile.
const SourceBuiltin = "builtin"

// FileError is a problem in one profile file.
type FileError struct {
	File string
	Line int // 0 when the problem has no line
	Err  error
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// Builtin returns the profiles embedded in the binary, sorted by id.
func Builtin() ([]Profile, error) {
	ps, err := loadDir(builtinFS, "profiles", func(name string) string { return SourceBuiltin })
	if err != nil {
		return nil, err
	}
	return ps, checkSet(ps)
}

// LoadAll returns the builtin profiles and the *.toml files of extraDir,
// sorted by id. A file whose id is a builtin's replaces it. extraDir ""
// or missing means none. Every malformed file is reported, by name and
// line, and none of the extras is used then.
func LoadAll(extraDir string) ([]Profile, error) {
	ps, err := Builtin()
	if err != nil || extraDir == "" {
		return ps, err
	}
	if _, err := os.Stat(extraDir); errors.Is(err, fs.ErrNotExist) {
		return ps, nil
	}
	extras, err := loadDir(os.DirFS(extraDir), ".", func(name string) string { return filepath.Join(extraDir, name) })
	if err != nil {
		return nil, err
	}
	for _, e := range extras {
		if i := slices.IndexFunc(ps, func(p Profile) bool { return p.ID == e.ID }); i >= 0 {
			ps[i] = e
		} else {
			ps = append(ps, e)
		}
	}
	sortByID(ps)
	return ps, checkSet(ps)
}

// loadDir reads every *.toml file of dir in fsys; source names a file for
// Profile.Source and in errors.
func loadDir(fsys fs.FS, dir string, source func(name string) string) ([]Profile, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read board profiles: %w", err)
	}
	var ps []Profile
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".toml" || strings.HasPrefix(name, ".") {
			continue
		}
		src := source(name)
		file := src
		if src == SourceBuiltin {
			file = path.Join(dir, name)
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			errs = append(errs, &FileError{File: file, Err: fmt.Errorf("cannot read: %w", err)})
			continue
		}
		p, err := parse(file, strings.TrimSuffix(name, ".toml"), data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.Source = src
		ps = append(ps, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sortByID(ps)
	return ps, nil
}

// parse decodes and validates one profile file; id is what the file name
// says the id must be.
func parse(file, id string, data []byte) (Profile, error) {
	var p Profile
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Profile{}, decodeError(file, err)
	}
	var errs []error
	lines := keyLines(data)
	for _, err := range errlist.Flatten(p.Validate()) {
		line := 0
		if ie, ok := errors.AsType[*InvalidError](err); ok {
			line = lines.find(ie.Field)
		}
		errs = append(errs, &FileError{File: file, Line: line, Err: err})
	}
	if p.ID != id && ValidID(p.ID) {
		errs = append(errs, &FileError{File: file, Line: lines.find("id"),
			Err: &InvalidError{ID: p.ID, Field: "id", Msg: fmt.Sprintf("does not match the file name %s.toml", id)}})
	}
	return p, errors.Join(errs...)
}

// decodeError names the file, line and key of the decoder's problems.
func decodeError(file string, err error) error {
	one := func(de *toml.DecodeError, msg string) error {
		line, _ := de.Position()
		if key := strings.Join(de.Key(), "."); key != "" {
			msg = key + ": " + msg
		}
		return &FileError{File: file, Line: line, Err: errors.New(msg)}
	}
	if sme, ok := errors.AsType[*toml.StrictMissingError](err); ok {
		var errs []error
		for i := range sme.Errors {
			errs = append(errs, one(&sme.Errors[i], "unknown key"))
		}
		return errors.Join(errs...)
	}
	if de, ok := errors.AsType[*toml.DecodeError](err); ok {
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if len(de.Key()) == 0 {
			msg = "cannot parse TOML: " + msg
		}
		return one(de, msg)
	}
	return &FileError{File: file, Err: err}
}

// checkSet checks rules across profiles: one generic profile per arch.
func checkSet(ps []Profile) error {
	first := map[string]Profile{}
	var errs []error
	for _, p := range ps {
		if !p.Generic() {
			continue
		}
		if g, ok := first[p.Arch]; ok {
			errs = append(errs, &FileError{File: p.Source, Err: &InvalidError{ID: p.ID, Field: "arch",
				Msg: fmt.Sprintf("%s already has a generic profile, %s (replace it by giving a file its id)", p.Arch, g.ID)}})
			continue
		}
		first[p.Arch] = p
	}
	return errors.Join(errs...)
}

func sortByID(ps []Profile) {
	slices.SortFunc(ps, func(a, b Profile) int { return cmp.Compare(a.ID, b.ID) })
}

// lines maps the keys of a profile file ("id", "match", "match.model") to
// their lines.
type lines map[string]int

func keyLines(data []byte) lines {
	l := lines{}
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind != unstable.Table && e.Kind != unstable.KeyValue {
			continue
		}
		var parts []string
		line := 0
		it := e.Key()
		for it.Next() {
			if line == 0 {
				line = p.Shape(it.Node().Raw).Start.Line
			}
			parts = append(parts, string(it.Node().Data))
		}
		key := strings.Join(parts, ".")
		if e.Kind == unstable.Table {
			table = key
		} else if table != "" {
			key = table + "." + key
		}
		if _, ok := l[key]; !ok {
			l[key] = line
		}
	}
	return l
}

// find is the line of a field ("match.model[1]"), or of the nearest parent
// in the file.
func (l lines) find(field string) int {
	field, _, _ = strings.Cut(field, "[")
	for field != "" {
		if n, ok := l[field]; ok {
			return n
		}
		i := strings.LastIndex(field, ".")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return 0
}
