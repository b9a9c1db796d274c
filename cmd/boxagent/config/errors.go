package config

import (
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// Error is one problem in a config file, at a key and a line.
type Error struct {
	File string `json:"file"`
	// Line and Column are 1-based; 0 when the problem has no place in the
	// file (a rule about a key left at its default).
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Key    string `json:"key,omitempty"` // "http.listen", "network.uplink[0].vlan"
	Msg    string `json:"message"`

	err error // the decoder's or the section's own error, for errors.As
}

// Error reads like `config.toml:7: http.listen: cannot parse "nope" as host:port`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error: a *toml.DecodeError, or what a
// section's Validate returned.
func (e *Error) Unwrap() error { return e.err }

// Errors is every problem found in one file, sorted by line.
type Errors []*Error

// Error is one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// sort orders by line; problems without a line go last.
func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		la, lb := a.Line, b.Line
		if la == 0 {
			la = int(^uint(0) >> 1)
		}
		if lb == 0 {
			lb = int(^uint(0) >> 1)
		}
		return cmp.Or(cmp.Compare(la, lb), cmp.Compare(a.Column, b.Column))
	})
}

// err is nil, the one *Error, or the sorted Errors.
func (es Errors) err() error {
	switch len(es) {
	case 0:
		return nil
	case 1:
		return es[0]
	}
	es.sort()
	return es
}

// FieldError is a problem a section's Validate reports at one of its keys.
// Domain packages cannot import this package (it imports them), so the
// walk recognises any error with the same two methods; FieldError is the
// ready-made one for sections defined here and in tests.
type FieldError struct {
	// Key is relative to the section: "listen", "uplink[0].vlan".
	Key string
	Msg string
}

// FieldErrorf makes a *FieldError.
func FieldErrorf(key, format string, args ...any) *FieldError {
	return &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Error is the message alone; the walk adds the key.
func (e *FieldError) Error() string { return e.Msg }

// ConfigKey is the key relative to the section.
func (e *FieldError) ConfigKey() string { return e.Key }

// keyed is how the walk finds the key of a section's error.
type keyed interface {
	error
	ConfigKey() string
}

// decodeErrors turns the decoder's error into ours, with the key path
// (array indexes included) taken from our own parse of the document.
// v is the decode target, to name the wanted kind of value in Go's stead.
func decodeErrors(name string, data []byte, err error, v any) Errors {
	places := mapKeys(data)
	one := func(de *toml.DecodeError, msg string) *Error {
		line, col := de.Position()
		key := strings.Join(de.Key(), ".")
		if k, ok := places.at[pos{line, col}]; ok {
			key = k
		}
		return &Error{File: name, Line: line, Column: col, Key: key, Msg: msg, err: de}
	}
	if sme, ok := errors.AsType[*toml.StrictMissingError](err); ok {
		es := make(Errors, 0, len(sme.Errors))
		for i := range sme.Errors {
			de := &sme.Errors[i]
			msg := "unknown key"
			if decodeMsg(de) == "missing table" {
				msg = "unknown table"
			}
			es = append(es, one(de, msg))
		}
		return es
	}
	if de, ok := errors.AsType[*toml.DecodeError](err); ok {
		e := one(de, decodeMsg(de))
		e.Msg = rephrase(e.Msg, v, splitKey(e.Key))
		if len(de.Key()) == 0 && e.Key == "" {
			e.Msg = "cannot parse TOML: " + e.Msg
		}
		return Errors{e}
	}
	return Errors{{File: name, Msg: err.Error(), err: err}}
}

func decodeMsg(de *toml.DecodeError) string {
	return strings.TrimPrefix(de.Error(), "toml: ")
}

// mismatchType is the TOML type the decoder names in "cannot decode
// TOML string into struct field …": the word after "cannot decode TOML "
// (a run of bytes that are not white space: space, \t, \n, \f or \r),
// with " table" when it follows ("inline table"), then " into ".
func mismatchType(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "cannot decode TOML ")
	n := strings.IndexAny(rest, " \t\n\f\r")
	if !ok || n < 1 {
		return "", false
	}
	switch word, rest := rest[:n], rest[n:]; {
	case strings.HasPrefix(rest, " table into "):
		return word + " table", true
	case strings.HasPrefix(rest, " into "):
		return word, true
	}
	return "", false
}

// definedTwice reports the decoder's "key … is already defined": "key ",
// anything without a newline, " is already defined", the end.
func definedTwice(msg string) bool {
	const head, tail = "key ", " is already defined"
	return len(msg) >= len(head)+len(tail) && strings.HasPrefix(msg, head) && strings.HasSuffix(msg, tail) &&
		!strings.Contains(msg[len(head):len(msg)-len(tail)], "\n")
}

// rephrase says the decoder's messages in the file's words rather than
// Go's: "want an integer, not a string" rather than "cannot decode TOML
// string into struct field config.Journal.Keep of type int".
func rephrase(msg string, v any, key []string) string {
	if typ, ok := mismatchType(msg); ok {
		if t, ok := typeAt(reflect.TypeOf(v), key); ok {
			return fmt.Sprintf("want %s, not %s", kindWords(t), tomlWords(typ))
		}
		return msg
	}
	if definedTwice(msg) {
		return "defined twice"
	}
	return msg
}

// splitKey is the parts of a key path, unquoted, without array indexes.
func splitKey(path string) []string {
	var parts []string
	for path != "" {
		parent := parentKey(path)
		last := strings.TrimPrefix(path[len(parent):], ".")
		if !strings.HasPrefix(last, "[") {
			if u, err := strconv.Unquote(last); err == nil {
				last = u
			}
			parts = append(parts, last)
		}
		path = parent
	}
	slices.Reverse(parts)
	return parts
}

// typeAt finds the Go type decoded at a key path (without array indexes).
func typeAt(t reflect.Type, key []string) (reflect.Type, bool) {
	for _, part := range key {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			f, ok := fieldByKey(t, part)
			if !ok {
				return nil, false
			}
			t = f.Type
		default:
			return nil, false
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t, true
}

// fieldByKey finds the struct field go-toml decodes the key into: the
// toml tag, else the field name, compared case-insensitively as go-toml
// does; embedded structs are searched too.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous && f.Tag.Get("toml") == "" {
			continue
		}
		if strings.EqualFold(tomlName(f), key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// tomlName is the key of a struct field in the file, "" for none.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}

func tomlWords(k string) string {
	switch k {
	case "integer", "array", "inline table":
		return "an " + k
	}
	return "a " + k
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func kindWords(t reflect.Type) string {
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a table"
}
