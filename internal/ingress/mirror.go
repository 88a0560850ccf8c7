package ingress

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/milvus"
)

// AnnotationMirror names a mirror for the calls of the Ingress's backends: a Service that
// gets a copy of percent of the calls of the operation classes (default: reads only), and
// whose replies are dropped:
//
//	'{"serviceName":"milvus-next","servicePort":19530,"percent":10,"operation":["read"]}'
const AnnotationMirror = "milvus-lb.io/mirror"

type mirrorJSON struct {
	ServiceName *string             `json:"serviceName"`
	ServicePort *intstr.IntOrString `json:"servicePort"`
	Percent     *int64              `json:"percent"`
	Operation   stringList          `json:"operation"`
}

// readMirror parses the mirror annotation and resolves its Service in namespace ns; nil
// when there is none, or after reporting an error.
func (x *index) readMirror(a annotations, ns string, s backendSettings) (*config.Mirror, *config.Backend) {
	var mj mirrorJSON
	if !a.object(AnnotationMirror, "mirror", `{"serviceName":"milvus-next","servicePort":19530,"percent":10}`, &mj) {
		return nil, nil
	}
	m := &config.Mirror{Percent: 100, Operations: []string(mj.Operation)}
	if mj.Percent != nil {
		m.Percent = int(*mj.Percent)
	}
	if len(m.Operations) == 0 {
		m.Operations = []string{milvus.Read.String()}
	}
	tg := targetGroup{ServiceName: mj.ServiceName, ServicePort: mj.ServicePort}
	why := ""
	if m.Percent < 1 || m.Percent > 100 {
		why = fmt.Sprintf(".percent: %d: must be from 1 to 100", m.Percent)
	}
	for _, op := range m.Operations {
		if _, ok := milvus.ParseClass(op); !ok && why == "" {
			why = fmt.Sprintf(".operation: %q: must be read, write, ddl or admin", op)
		}
	}
	be := x.namedBackend(a, AnnotationMirror, "mirror", ns, tg, why, s)
	if be == nil {
		return nil, nil
	}
	m.Backend = be.Key
	return m, be
}
