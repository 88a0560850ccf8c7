package ingress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// AnnotationRateLimits is milvus-lb's rate limits for the calls an Ingress routes, a JSON
// list of token buckets (docs/annotations.md):
//
//	'[{"name":"reads-per-user","per":["user"],"operation":"read","calls":100},
//	  {"name":"tenant-a-writes","database":"tenant_a","operation":"write","calls":50,"bytes":10485760}]'
const AnnotationRateLimits = "milvus-lb.io/rate-limits"

// rateLimitJSON is one element of the annotation.
type rateLimitJSON struct {
	Name       string     `json:"name"`
	User       stringList `json:"user"`
	Database   stringList `json:"database"`
	Collection stringList `json:"collection"`
	Operation  stringList `json:"operation"`
	Per        stringList `json:"per"`
	Calls      float64    `json:"calls"`
	Bytes      float64    `json:"bytes"`
	Burst      *float64   `json:"burst"`
}

// stringList is a JSON string or list of strings.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte(`"`)) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = []string{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(l))
}

// perKeys are what a limit may keep a bucket for each value of.
var perKeys = []string{"user", "database", "collection", "operation"}

// maxBurst bounds a bucket's size in seconds of its rate: a larger one would let a
// client that was idle send minutes of calls at once.
const maxBurst = 60

// parseRateLimits reads the annotation; invalid limits are reported and dropped.
func parseRateLimits(a annotations) []config.RateLimit {
	v, ok := a.get(AnnotationRateLimits)
	if !ok {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	var list []rateLimitJSON
	if err := dec.Decode(&list); err != nil {
		a.errorf(AnnotationRateLimits, `invalid rate limits: want a JSON list such as [{"name":"reads-per-user","per":["user"],"operation":"read","calls":100}]: %v`, err)
		return nil
	}
	var out []config.RateLimit
	names := map[string]bool{}
	for i, l := range list {
		rl, why := rateLimit(l)
		if why == "" && names[l.Name] {
			why = fmt.Sprintf(".name: %q is used twice", l.Name)
		}
		if why != "" {
			a.errorf(AnnotationRateLimits, "[%d]%s", i, why)
			continue
		}
		names[l.Name] = true
		out = append(out, rl)
	}
	return out
}

// rateLimitsOf are the rate limits of the served Ingresses, by ns/name; nil when none
// has any.
func rateLimitsOf(accepted []*plan) map[string][]config.RateLimit {
	var out map[string][]config.RateLimit
	for _, p := range accepted {
		if len(p.limits) > 0 {
			if out == nil {
				out = map[string][]config.RateLimit{}
			}
			out[p.key] = p.limits
		}
	}
	return out
}

// rateLimit checks one limit; why starts with the JSON field it is about.
func rateLimit(l rateLimitJSON) (config.RateLimit, string) {
	rl := config.RateLimit{Name: l.Name, Users: l.User, Databases: l.Database, Collections: l.Collection,
		Operations: l.Operation, Per: l.Per, Calls: l.Calls, Bytes: l.Bytes}
	if errs := validation.IsDNS1123Label(l.Name); len(errs) > 0 {
		return rl, fmt.Sprintf(".name: %q: %s", l.Name, strings.Join(errs, "; "))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"calls", l.Calls}, {"bytes", l.Bytes}} {
		if f.v < 0 || math.IsInf(f.v, 0) {
			return rl, fmt.Sprintf(".%s: %v: must be a rate per second, 0 or more", f.name, f.v)
		}
	}
	if l.Calls == 0 && l.Bytes == 0 {
		return rl, ": give calls (per second), bytes (per second, of writes) or both"
	}
	for j, op := range l.Operation {
		if why := validOperation(op); why != "" {
			return rl, fmt.Sprintf(".operation[%d]: %q: %s", j, op, why)
		}
	}
	if l.Bytes > 0 && len(l.Operation) > 0 && !slices.Contains(l.Operation, "write") {
		return rl, ".bytes: limits the bytes of write calls, and operation selects no write"
	}
	for j, p := range l.Per {
		if !slices.Contains(perKeys, p) || slices.Index(l.Per, p) != j {
			return rl, fmt.Sprintf(".per[%d]: %q: must be one of %s, each once", j, p, strings.Join(perKeys, ", "))
		}
	}
	for _, sel := range []struct {
		field string
		vs    []string
	}{{"user", l.User}, {"database", l.Database}, {"collection", l.Collection}} {
		for j, v := range sel.vs {
			if why := validName(v); why != "" {
				return rl, fmt.Sprintf(".%s[%d]: %s", sel.field, j, why)
			}
		}
	}
	if l.Burst != nil {
		if *l.Burst <= 0 || *l.Burst > maxBurst {
			return rl, fmt.Sprintf(".burst: %v: must be more than 0 and at most %d (seconds of the rate)", *l.Burst, maxBurst)
		}
		rl.Burst = *l.Burst
	}
	return rl, ""
}
