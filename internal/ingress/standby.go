package ingress

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// AnnotationStandby names a standby cluster for the reads of the Ingress's backends: a
// Service, as a forward action's target group names one, the percent of the reads that
// accept stale data it takes (default 100), and how far behind the primary it may be
// (default 5s):
//
//	'{"serviceName":"milvus-standby","servicePort":19530,"weight":100,"staleness":"5s"}'
const AnnotationStandby = "milvus-lb.io/standby"

// defaultStandbyStaleness is Milvus's own bound for a Bounded read (common.gracefulTime,
// 5000 ms): by default a read that names a point in time goes to the standby only if a
// Bounded read on the primary could have missed what came after it anyway.
const defaultStandbyStaleness = 5 * time.Second

// maxStandbyStaleness bounds the setting: a standby a day behind is a backup, not a
// replica to read from.
const maxStandbyStaleness = 24 * time.Hour

// standbyJSON is the annotation's object: a target group and the staleness.
type standbyJSON struct {
	targetGroup
	Staleness string `json:"staleness"`
}

// readStandby parses the standby annotation and resolves its Service in namespace ns;
// nil when there is none, or after reporting an error.
func (x *index) readStandby(a annotations, ns string, s backendSettings) (*config.Standby, *config.Backend) {
	var sj standbyJSON
	if !a.object(AnnotationStandby, "standby", `{"serviceName":"milvus-standby","servicePort":19530}`, &sj) {
		return nil, nil
	}
	sb := &config.Standby{Weight: 100, Staleness: config.Duration(defaultStandbyStaleness)}
	if sj.Weight != nil {
		sb.Weight = int(*sj.Weight)
	}
	why := ""
	if sb.Weight < 1 || sb.Weight > 100 {
		why = fmt.Sprintf(".weight: %d: must be from 1 to 100 (the percent of stale-tolerant reads the standby takes)", sb.Weight)
	}
	if sj.Staleness != "" {
		d, err := time.ParseDuration(sj.Staleness)
		if err != nil || d <= 0 || d > maxStandbyStaleness {
			why = fmt.Sprintf(".staleness: %q: must be a duration more than 0 and at most 24h, such as 5s (how far behind the primary the standby may be)", sj.Staleness)
		}
		sb.Staleness = config.Duration(d)
	}
	be := x.namedBackend(a, AnnotationStandby, "standby", ns, sj.targetGroup, why, s)
	if be == nil {
		return nil, nil
	}
	sb.Backend = be.Key
	return sb, be
}

// namedBackend resolves the Service an annotation (name, its object called what) names
// as a target group does, unless why says what is wrong with the rest of it; nil after
// reporting an error.
func (x *index) namedBackend(a annotations, name, what, ns string, tg targetGroup, why string, s backendSettings) *config.Backend {
	if w := targetService(tg); w != "" {
		why = w
	}
	if why != "" {
		a.errorf(name, "%s%s", what, why)
		return nil
	}
	return x.actionBackend(a, name, ns, what, tg, s)
}

// applyPolicies applies the Ingress's annotations that extend its backends: a standby
// cluster, a mirror.
func (x *index) applyPolicies(p *plan, a annotations, ns string) {
	if sb, sbe := x.readStandby(a, ns, p.s.backend); sb != nil {
		p.extendBackends(sb.Backend, sbe, AnnotationStandby, func(b *config.Backend) { b.Standby = sb })
	}
	if m, mbe := x.readMirror(a, ns, p.s.backend); m != nil {
		p.extendBackends(m.Backend, mbe, AnnotationMirror, func(b *config.Backend) { b.Mirror = m })
	}
}

// extendBackends sets, with set, a policy naming the backend keyed key (the Service the
// annotation names) on every other backend of the plan, and adds be, that backend, to it.
func (p *plan) extendBackends(key string, be *config.Backend, annotation string, set func(*config.Backend)) {
	have := false
	for _, pb := range p.backends {
		if pb.Key == key {
			have = true
			continue
		}
		set(pb.Backend)
	}
	if !have {
		p.backends = append(p.backends, plannedBackend{Backend: be, field: annotationPath(annotation)})
	}
}

// object decodes the annotation name, a JSON object (what is in it is called what; example
// shows one), into out, refusing unknown fields: a misspelled field is a mistake to
// report. It reports false when the annotation is absent, or after reporting an error.
func (a annotations) object(name, what, example string, out any) bool {
	v, ok := a.get(name)
	if !ok {
		return false
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		a.errorf(name, `invalid %s %q: want a JSON object such as %s: %v`, what, v, example, err)
		return false
	}
	return true
}
