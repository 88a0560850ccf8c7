package gatewayapi_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gatewayapi"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/source"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// shared are read with every case: the guide's Milvus Service and the certificate
// Secrets of the Ingress fixtures, so both translations see the same cluster.
var shared = []string{"../ingress/testdata/milvus.yaml", "../ingress/testdata/secrets.yaml"}

// load reads manifests as `serve -f` does, each file named by its base name.
func load(t *testing.T, names ...string) ingress.Objects {
	t.Helper()
	var objs ingress.Objects
	for _, n := range append(append([]string{}, shared...), names...) {
		path := n
		if !strings.Contains(n, "/") {
			path = filepath.Join("testdata", n)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		o, ps := source.ParseManifest(filepath.Base(n), data)
		if len(ps.Errors()) > 0 {
			t.Fatalf("%s: %s", n, ps.Report())
		}
		objs = mergeObjects(objs, o)
	}
	return objs
}

func mergeObjects(a, b ingress.Objects) ingress.Objects {
	a.Ingresses = append(a.Ingresses, b.Ingresses...)
	a.Services = append(a.Services, b.Services...)
	a.EndpointSlices = append(a.EndpointSlices, b.EndpointSlices...)
	a.Secrets = append(a.Secrets, b.Secrets...)
	a.GatewayClasses = append(a.GatewayClasses, b.GatewayClasses...)
	a.Gateways = append(a.Gateways, b.Gateways...)
	a.GRPCRoutes = append(a.GRPCRoutes, b.GRPCRoutes...)
	a.HTTPRoutes = append(a.HTTPRoutes, b.HTTPRoutes...)
	a.ReferenceGrants = append(a.ReferenceGrants, b.ReferenceGrants...)
	a.Namespaces = append(a.Namespaces, b.Namespaces...)
	if a.Files == nil {
		a.Files = map[string]string{}
	}
	for k, v := range b.Files {
		a.Files[k] = v
	}
	return a
}

type golden struct {
	Model    *config.Model `json:"model"`
	Problems []string      `json:"problems"`
}

// cases are the fixtures with the problem lines a user must see, checked besides the
// golden file so that regenerating goldens cannot hide a lost message.
var cases = []struct {
	name  string
	files []string
	want  []string
}{
	{name: "guide", files: []string{"../../examples/gateway-api/gateway.yaml"}},
	{name: "matches", files: []string{"canary.yaml"}},
	{name: "grants"},
	{name: "problems", want: []string{
		"error: problems.yaml: GRPCRoute milvus/missing-backend: spec.rules[0].backendRefs[1]: Service milvus/milvus-demoo not found",
		"error: problems.yaml: GRPCRoute milvus/no-grant: spec.rules[0].backendRefs[0]: no ReferenceGrant in namespace team-b lets GRPCRoutes of namespace milvus use Service milvus-demo",
		"error: problems.yaml: Gateway milvus/milvus-demo: spec.listeners[0].tls.certificateRefs[1].name: Secret milvus/no-such-secret not found",
		"error: problems.yaml: Gateway milvus/milvus-demo: spec.listeners[1].protocol: protocol TCP is not supported: milvus-lb serves HTTP and HTTPS listeners",
		"error: problems.yaml: HTTPRoute milvus/unsupported: spec.rules[0].filters: filters are not supported",
		"warning: problems.yaml: GRPCRoute milvus/wrong-parent: spec.parentRefs[2].name: Gateway milvus/no-such-gateway not found; the route is not attached to it",
	}},
	{name: "listeners", want: []string{
		"error: listeners.yaml: Gateway milvus/edge: spec.listeners[0].tls.mode: tls.mode Passthrough is not supported: milvus-lb terminates TLS",
		"error: listeners.yaml: Gateway milvus/edge: spec.listeners[2].allowedRoutes.kinds[0]: route kind gateway.networking.k8s.io/TCPRoute is not supported: milvus-lb serves GRPCRoute and HTTPRoute",
		"error: listeners.yaml: GRPCRoute milvus/grpc-on-http-only: spec.parentRefs[0]: the listeners of Gateway milvus/edge do not allow GRPCRoute from namespace milvus (allowedRoutes)",
	}},
	{name: "selector", want: []string{
		"error: selector.yaml: GRPCRoute team-b/not-selected: spec.parentRefs[0]: the listeners of Gateway milvus/shared do not allow GRPCRoute from namespace team-b (allowedRoutes)",
	}},
	{name: "class-settings", want: []string{
		"warning: class-settings.yaml: GatewayClass milvus-lb: metadata.annotations[alb.ingress.kubernetes.io/listen-ports]: annotation alb.ingress.kubernetes.io/listen-ports has no effect on GatewayClass: only the target group annotations (health check, target-group-attributes, resilience) apply, to the backends of its routes",
		"error: class-settings.yaml: GatewayClass broken: metadata.annotations[milvus-lb.io/healthcheck-type]: invalid value \"tcp\": must be one of milvus, grpc-health, grpc, http, none",
	}},
	{name: "ingress-port", files: []string{"../ingress/testdata/guide.yaml"}, want: []string{
		"error: ingress-port.yaml: Gateway milvus/late: spec.listeners[0].port: port 443 is served by Ingress milvus/milvus-demo; a Gateway cannot share a port with Ingresses",
	}},
}

func TestTranslateFixtures(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			main := []string{tc.name + ".yaml"}
			if tc.name == "guide" {
				main = nil // the example users read
			}
			objs := load(t, append(main, tc.files...)...)
			model, problems := gatewayapi.TranslateAll(objs, ingress.Options{})
			lines := []string{}
			for _, p := range problems {
				lines = append(lines, string(p.Severity)+": "+p.String())
			}
			for _, w := range tc.want {
				if !contains(lines, w) {
					t.Errorf("missing problem %q; got:\n%s", w, strings.Join(lines, "\n"))
				}
			}
			if tc.want == nil && len(lines) > 0 {
				t.Errorf("want no problem, got:\n%s", strings.Join(lines, "\n"))
			}
			got, err := json.MarshalIndent(golden{Model: model, Problems: lines}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(want) != string(got) {
				t.Errorf("%s differs from the output; run with -update and review the diff", path)
			}
			// Pure: the same objects give the same output.
			again, _ := gatewayapi.TranslateAll(objs, ingress.Options{})
			if a, _ := json.Marshal(again); string(a) != mustJSON(t, model) {
				t.Error("a second translation differs")
			}
		})
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
