package config

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/boxagent/boxagent/internal/errlist"
)

// Section is a part of the file with rules of its own: Config itself, a
// table such as [http], or an element of an array of tables. The walk
// calls Validate on every value of a type that has it, at any depth, and
// reports each problem at its key.
//
// Validate returns nil, one error, or several joined with errors.Join. An
// error with a method ConfigKey() string (FieldError has one; a domain
// package defines its own, since it cannot import this package) is
// reported at that key, relative to the section, and its Error() is the
// message without the key. Any other error is reported at the section's
// own key.
type Section interface {
	Validate() error
}

var sectionType = reflect.TypeFor[Section]()

// problem is a rule broken at a key path.
type problem struct {
	key string
	err error
}

// validateDoc validates v, decoded from data, and places each problem on
// its line.
func validateDoc(name string, data []byte, v any) Errors {
	var found []problem
	walk(reflect.ValueOf(v), "", false, func(key string, err error) {
		found = append(found, problem{key, err})
	})
	if len(found) == 0 {
		return nil
	}
	pl := mapKeys(data)
	es := make(Errors, 0, len(found))
	for _, f := range found {
		at := pl.find(f.key)
		es = append(es, &Error{File: name, Line: at.line, Column: at.col, Key: f.key, Msg: f.err.Error(), err: f.err})
	}
	return es
}

// walk calls Validate on v and everything below it. inherited is true for
// an embedded struct, whose Validate (promoted) the outer value ran.
func walk(v reflect.Value, path string, inherited bool, report func(string, error)) {
	if v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		walk(v.Elem(), path, inherited, report)
		return
	}
	if s, ok := asSection(v); ok && !inherited {
		for _, err := range errlist.Flatten(s.Validate()) {
			key := path
			if k, ok := errors.AsType[keyed](err); ok && k.ConfigKey() != "" {
				key = joinKey(path, k.ConfigKey())
			}
			report(key, err)
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Anonymous && f.Tag.Get("toml") == "" {
				walk(v.Field(i), path, true, report)
				continue
			}
			if name := tomlName(f); name != "" {
				walk(v.Field(i), joinKey(path, quoteKey(name)), false, report)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i), false, report)
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			return cmp.Compare(fmt.Sprint(a.Interface()), fmt.Sprint(b.Interface()))
		})
		for _, k := range keys {
			walk(v.MapIndex(k), joinKey(path, quoteKey(fmt.Sprint(k.Interface()))), false, report)
		}
	}
}

// asSection finds Validate on the value or, when it can be addressed, on
// a pointer to it.
func asSection(v reflect.Value) (Section, bool) {
	if !v.CanInterface() {
		return nil, false
	}
	if v.CanAddr() && v.Addr().Type().Implements(sectionType) {
		return v.Addr().Interface().(Section), true
	}
	if v.Type().Implements(sectionType) {
		return v.Interface().(Section), true
	}
	return nil, false
}
