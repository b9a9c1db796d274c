package localapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
)

// Errorf builds an API error; handlers return it when they decide the
// status themselves.
func Errorf(status int, code, message, hint string) *apitype.Error {
	return &apitype.Error{Status: status, Code: code, Message: message, Hint: hint}
}

// ErrorMapper turns a domain error into an API error, or returns nil when it
// does not know the error. The daemon gives the server its one table
// (Options.Mappers), so that this package calls no domain code.
type ErrorMapper func(error) *apitype.Error

func (s *Server) apiError(err error) *apitype.Error {
	var e *apitype.Error
	if errors.As(err, &e) {
		return e
	}
	for _, m := range s.mappers {
		if e := m(err); e != nil {
			return e
		}
	}
	return &apitype.Error{Status: http.StatusInternalServerError, Code: "internal", Message: err.Error()}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) writeError(w http.ResponseWriter, err error) {
	e := s.apiError(err)
	writeJSON(w, e.Status, map[string]*apitype.Error{"error": e})
}
