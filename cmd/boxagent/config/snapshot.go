package config

import (
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
)

// Snapshot is the whole config as JSON, as journalled with each
// operation. Every string in a field tagged secret:"true" is replaced by
// Fingerprint of its value, at any depth, so sections added later are
// covered without code here. Secret fields must hold strings (a test
// checks Config).
func (c *Config) Snapshot() json.RawMessage { return snapshot(c) }

// snapshot encodes *v, secrets fingerprinted.
func snapshot(v any) json.RawMessage {
	src := reflect.ValueOf(v).Elem()
	out := reflect.New(src.Type()).Elem()
	redact(out, src, false)
	b, err := json.Marshal(out.Interface())
	if err != nil {
		// The config is plain data; failing to encode it is a bug here.
		panic(fmt.Sprintf("config: cannot encode snapshot: %v", err))
	}
	return b
}

// Revision names this config: "sha256:<hex>" of its snapshot, which is
// canonical JSON (fields in a fixed order, no whitespace), so comments and
// layout in the file do not change it. It is taken over the snapshot
// rather than the raw values so that it reveals nothing of the secrets
// the snapshot hides, yet still changes when a secret does.
func (c *Config) Revision() string { return RevisionOf(c.Snapshot()) }

// RevisionOf is the revision of a config whose Snapshot is snap.
func RevisionOf(snap json.RawMessage) string {
	sum := sha256.Sum256(snap)
	return "sha256:" + hex.EncodeToString(sum[:])
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// redact copies src into dst, fingerprinting the strings below a secret
// field. Unexported fields are left zero: JSON does not show them either.
func redact(dst, src reflect.Value, secret bool) {
	t := src.Type()
	if t.Kind() == reflect.Struct && (t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		reflect.PointerTo(t).Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(textMarshaler)) {
		// A value that encodes itself (time.Time, netip.Addr) is copied
		// whole: its fields are its own business.
		dst.Set(src)
		return
	}
	switch src.Kind() {
	case reflect.String:
		if secret {
			dst.SetString(Fingerprint(src.String()))
		} else {
			dst.Set(src)
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			redact(dst.Field(i), src.Field(i), secret || f.Tag.Get("secret") == "true")
		}
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.New(t.Elem()))
		redact(dst.Elem(), src.Elem(), secret)
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeSlice(t, src.Len(), src.Len()))
		for i := range src.Len() {
			redact(dst.Index(i), src.Index(i), secret)
		}
	case reflect.Array:
		for i := range src.Len() {
			redact(dst.Index(i), src.Index(i), secret)
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeMapWithSize(t, src.Len()))
		it := src.MapRange()
		for it.Next() {
			v := reflect.New(t.Elem()).Elem()
			redact(v, it.Value(), secret)
			dst.SetMapIndex(it.Key(), v)
		}
	case reflect.Interface:
		if src.IsNil() {
			return
		}
		v := reflect.New(src.Elem().Type()).Elem()
		redact(v, src.Elem(), secret)
		dst.Set(v)
	default:
		dst.Set(src)
	}
}
