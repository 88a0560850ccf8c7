package source

import (
	"os"
	"strings"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

func parseFile(t *testing.T, name string) (ingress.Objects, config.Problems) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return ParseManifest(name, data)
}

// wantProblems compares problems, one "severity: file: object: field: message" line each,
// in order.
func wantProblems(t *testing.T, got config.Problems, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(got.Report(), "\n"), "\n")
	if got.Report() == "" {
		lines = nil
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func names(objs ingress.Objects) []string {
	var out []string
	for _, o := range objs.Ingresses {
		out = append(out, ingress.ObjectName("Ingress", o.Namespace, o.Name))
	}
	for _, o := range objs.IngressClasses {
		out = append(out, ingress.ObjectName("IngressClass", o.Namespace, o.Name))
	}
	for _, o := range objs.Services {
		out = append(out, ingress.ObjectName("Service", o.Namespace, o.Name))
	}
	for _, o := range objs.EndpointSlices {
		out = append(out, ingress.ObjectName("EndpointSlice", o.Namespace, o.Name))
	}
	for _, o := range objs.Endpoints {
		out = append(out, ingress.ObjectName("Endpoints", o.Namespace, o.Name))
	}
	for _, o := range objs.Secrets {
		out = append(out, ingress.ObjectName("Secret", o.Namespace, o.Name))
	}
	return out
}

func wantNames(t *testing.T, objs ingress.Objects, want ...string) {
	t.Helper()
	got := names(objs)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("objects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseGuide(t *testing.T) {
	objs, problems := parseFile(t, "testdata/guide.yaml")
	wantProblems(t, problems,
		"warning: testdata/guide.yaml: ConfigMap milvus/milvus-config: kind ConfigMap is not used by milvus-lb and is ignored")
	wantNames(t, objs,
		"Ingress milvus/milvus-demo",
		"IngressClass alb", // cluster-scoped: its namespace is dropped
		"Service default/milvus-demo",
		"EndpointSlice default/milvus-demo-abc12",
		"Endpoints default/milvus-demo",
		"Secret default/tls-from-data",
		"Secret default/tls-from-stringdata",
	)
	for _, n := range names(objs) {
		if objs.Files[n] != "testdata/guide.yaml" {
			t.Errorf("Files[%q] = %q", n, objs.Files[n])
		}
	}
	if len(objs.Files) != 7 {
		t.Errorf("Files has %d entries, want 7", len(objs.Files))
	}

	ing := objs.Ingresses[0]
	if got := ing.Annotations["alb.ingress.kubernetes.io/listen-ports"]; got != `[{"HTTPS":443}]` {
		t.Errorf("listen-ports annotation = %q", got)
	}
	path := ing.Spec.Rules[0].HTTP.Paths[0]
	if *ing.Spec.IngressClassName != "alb" || path.Backend.Service.Name != "milvus-demo" ||
		path.Backend.Service.Port.Number != 19530 || string(*path.PathType) != "Prefix" {
		t.Errorf("Ingress decoded as %+v", ing.Spec)
	}
	if ep := objs.EndpointSlices[0]; ep.Endpoints[0].Addresses[0] != "127.0.0.1" || !*ep.Endpoints[0].Conditions.Ready ||
		ep.Labels["kubernetes.io/service-name"] != "milvus-demo" {
		t.Errorf("EndpointSlice decoded as %+v", ep)
	}

	// data is base64; stringData is plain and wins over data, as the API server merges it.
	for _, tc := range []struct{ secret, crt, key string }{
		{"tls-from-data", "cert", "key"},
		{"tls-from-stringdata", "new-cert", "key"},
	} {
		for _, s := range objs.Secrets {
			if s.Name != tc.secret {
				continue
			}
			if string(s.Data["tls.crt"]) != tc.crt || string(s.Data["tls.key"]) != tc.key || s.StringData != nil {
				t.Errorf("Secret %s: data %q, stringData %q", s.Name, s.Data, s.StringData)
			}
		}
	}
}

func TestParseList(t *testing.T) {
	objs, problems := parseFile(t, "testdata/list.json")
	wantProblems(t, problems,
		"warning: testdata/list.json: Deployment milvus/milvus-proxy: kind Deployment is not used by milvus-lb and is ignored")
	wantNames(t, objs, "Ingress milvus/milvus-demo", "Service milvus/milvus-demo")
}

func TestParseErrors(t *testing.T) {
	objs, problems := parseFile(t, "testdata/errors.yaml")
	const f = "testdata/errors.yaml: "
	wantProblems(t, problems,
		"error: "+f+"Ingress milvus/old: apiVersion extensions/v1beta1 is not supported for Ingress; use networking.k8s.io/v1",
		"error: "+f+`Ingress default/typo: spec.rules[0].http.paths[0].pathtype: unknown field "pathtype"`,
		"error: "+f+`Ingress default/typo: spec.tls2: unknown field "tls2"`,
		"error: "+f+"document 3 at line 29: kind is missing",
		"error: "+f+"Service: metadata.name: required, but missing in document 4 at line 33",
		"error: "+f+"Service default/no-api-version: apiVersion is missing; use v1",
		"error: "+f+"Service default/bad-port: spec.ports.port: got a string, want int32",
		"error: "+f+`Service default/dup-key-2: line 54: key "name" already set in map`,
		"warning: "+f+"Secret default/opaque: type: Secret type Opaque is not used by milvus-lb and is ignored; certificates are read from kubernetes.io/tls Secrets",
		"error: "+f+"Secret default/bad-base64: data: illegal base64 data at input byte 0 (data values are base64; put plain text in stringData)",
		"error: "+f+"Secret default/no-key: data[tls.key]: required for a kubernetes.io/tls Secret",
		"error: "+f+"document 11 at line 80: a manifest must be an object with apiVersion, kind and metadata, not an array",
		"error: "+f+"Service default/twice: defined twice in this file, in document 12 at line 83 and document 13 at line 88; the first is used",
		"error: "+f+"document 14 at line 93: malformed YAML: yaml: line 97: did not find expected ',' or '}'",
	)
	// What is wrong is left out; what is right is still read.
	wantNames(t, objs, "Service default/twice", "Service default/good")
}

func TestParseEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		objects  []string
		problems []string
	}{
		{name: "empty file", in: ""},
		{name: "only comments and markers", in: "# nothing\n---\n---\n# here\n"},
		{
			name:    "CRLF line endings and a leading marker",
			in:      "---\r\napiVersion: v1\r\nkind: Service\r\nmetadata:\r\n  name: a\r\n---\r\napiVersion: v1\r\nkind: Service\r\nmetadata:\r\n  name: b\r\n",
			objects: []string{"Service default/a", "Service default/b"},
		},
		{
			name:    "JSON object",
			in:      `{"apiVersion":"v1","kind":"Service","metadata":{"name":"j","namespace":"milvus"}}`,
			objects: []string{"Service milvus/j"},
		},
		{
			name:     "old EndpointSlice version",
			in:       "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata:\n  name: e\n",
			problems: []string{"error: m.yaml: EndpointSlice default/e: apiVersion discovery.k8s.io/v1beta1 is not supported for EndpointSlice; use discovery.k8s.io/v1"},
		},
		{
			name:     "scalar document",
			in:       "hello\n",
			problems: []string{"error: m.yaml: document 1 at line 1: a manifest must be an object with apiVersion, kind and metadata, not a string"},
		},
		{
			name:     "List with a duplicate key in an item",
			in:       "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  kind: Service\n  metadata: {name: x}\n",
			problems: []string{`error: m.yaml: document 1 at line 1: line 6: key "kind" already set in map`},
		},
		{
			name:     "unknown field inside a List item",
			in:       "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: x}\n  spec: {prots: []}\n",
			problems: []string{`error: m.yaml: Service default/x: spec.prots: unknown field "prots"`},
		},
		{
			name:     "namespace without a name",
			in:       "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\n",
			problems: []string{"error: m.yaml: Secret: metadata.name: required, but missing in document 1 at line 1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, problems := ParseManifest("m.yaml", []byte(tc.in))
			wantProblems(t, problems, tc.problems...)
			wantNames(t, objs, tc.objects...)
		})
	}
}
