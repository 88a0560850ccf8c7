package ingress

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// AnnotationStandby names a standby cluster for the reads of the Ingress's backends: a
// Service, as a forward action's target group names one, and the percent of the reads
// that accept stale data it takes (default 100):
//
//	'{"serviceName":"milvus-standby","servicePort":19530,"weight":100}'
const AnnotationStandby = "milvus-lb.io/standby"

// readStandby parses the standby annotation and resolves its Service in namespace ns;
// nil when there is none, or after reporting an error.
func (x *index) readStandby(a annotations, ns string, s backendSettings) (*config.Standby, *config.Backend) {
	v, ok := a.get(AnnotationStandby)
	if !ok {
		return nil, nil
	}
	var tg targetGroup
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tg); err != nil {
		a.errorf(AnnotationStandby, `invalid standby %q: want a JSON object such as {"serviceName":"milvus-standby","servicePort":19530}: %v`, v, err)
		return nil, nil
	}
	w := int64(100)
	if tg.Weight != nil {
		w = *tg.Weight
	}
	why := targetService(tg)
	if why == "" && (w < 1 || w > 100) {
		why = fmt.Sprintf(".weight: %d: must be from 1 to 100 (the percent of stale-tolerant reads the standby takes)", w)
	}
	if why != "" {
		a.errorf(AnnotationStandby, "standby%s", why)
		return nil, nil
	}
	be := x.actionBackend(a, AnnotationStandby, ns, "standby", tg, s)
	if be == nil {
		return nil, nil
	}
	return &config.Standby{Backend: be.Key, Weight: int(w)}, be
}

// setStandby gives every backend of the plan the standby sb, and adds the standby's own
// backend (sbe) to the plan.
func (p *plan) setStandby(sb *config.Standby, sbe *config.Backend) {
	have := false
	for _, pb := range p.backends {
		if pb.Key == sb.Backend {
			have = true
			continue
		}
		pb.Standby = sb
	}
	if !have {
		p.backends = append(p.backends, plannedBackend{Backend: sbe, field: annotationPath(AnnotationStandby)})
	}
}
