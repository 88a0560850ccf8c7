package config

import (
	"fmt"
	"sort"
	"strings"
)

// Severity of a Problem. An Error disables what it names (one route, one Ingress, or the
// whole configuration if nothing can be served); a Warning changes nothing that is served,
// such as an ignored annotation.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Problem is one finding about the input objects, reported with the file, the object and
// the field it is about, so that a user can find and fix it:
//
//	ingress.yaml: Ingress milvus/milvus-demo: spec.rules[0].http.paths[0].backend.service.name: Service milvus/milvus-demoo not found
type Problem struct {
	Severity Severity `json:"severity"`
	File     string   `json:"file,omitempty"`   // empty for objects from the API server
	Object   string   `json:"object,omitempty"` // "Kind ns/name"
	Field    string   `json:"field,omitempty"`  // a field path such as spec.rules[0].host
	Message  string   `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	for _, s := range []string{p.File, p.Object, p.Field} {
		if s != "" {
			b.WriteString(s)
			b.WriteString(": ")
		}
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is a list of findings with helpers for reporting.
type Problems []Problem

// Errors returns only the problems of Severity Error.
func (ps Problems) Errors() Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == Error {
			out = append(out, p)
		}
	}
	return out
}

// Sort orders problems by file, object, field and message, so reports are stable.
func (ps Problems) Sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		if a.Field != b.Field {
			return a.Field < b.Field
		}
		return a.Message < b.Message
	})
}

// Report renders one problem a line, prefixed by its severity.
func (ps Problems) Report() string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s: %s\n", p.Severity, p)
	}
	return b.String()
}
