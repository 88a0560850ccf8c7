package ingress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// sharedFixtures are read with every case: the guide's Milvus Service and EndpointSlice,
// and the certificate Secrets (see testdata/gencerts).
var sharedFixtures = []string{"milvus.yaml", "secrets.yaml"}

// loadObjects decodes multi-document YAML files from testdata into Objects, recording
// each object's file under its base name, as the file source does.
func loadObjects(t *testing.T, names ...string) Objects {
	t.Helper()
	objs := Objects{Files: map[string]string{}}
	decode := scheme.Codecs.UniversalDeserializer()
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			obj, gvk, err := decode.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var ns, n string
			switch o := obj.(type) {
			case *networkingv1.Ingress:
				objs.Ingresses = append(objs.Ingresses, o)
				ns, n = o.Namespace, o.Name
			case *networkingv1.IngressClass:
				objs.IngressClasses = append(objs.IngressClasses, o)
				n = o.Name
			case *corev1.Service:
				objs.Services = append(objs.Services, o)
				ns, n = o.Namespace, o.Name
			case *discoveryv1.EndpointSlice:
				objs.EndpointSlices = append(objs.EndpointSlices, o)
				ns, n = o.Namespace, o.Name
			case *corev1.Endpoints:
				objs.Endpoints = append(objs.Endpoints, o)
				ns, n = o.Namespace, o.Name
			case *corev1.Secret:
				objs.Secrets = append(objs.Secrets, o)
				ns, n = o.Namespace, o.Name
			default:
				t.Fatalf("%s: unexpected kind %s", name, gvk.Kind)
			}
			objs.Files[ObjectName(gvk.Kind, ns, n)] = name
		}
	}
	return objs
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// golden is what a fixture's .golden.json holds.
type golden struct {
	Model    *config.Model `json:"model"`
	Problems []string      `json:"problems"`
}

func problemLines(ps config.Problems) []string {
	lines := []string{}
	for _, p := range ps {
		lines = append(lines, string(p.Severity)+": "+p.String())
	}
	return lines
}

// cases are the fixtures, each with the problem lines a user must see (exact), checked in
// addition to the golden file so that regenerating goldens cannot hide a lost message.
var cases = []struct {
	name  string
	opts  Options
	files []string // more fixtures read with this case
	clean bool     // no problem at all
	want  []string
	exact bool // want is every problem, no more
}{
	{name: "guide", clean: true},
	{name: "port-name", clean: true},
	{name: "spec-tls", clean: true},
	{name: "route-order", want: []string{
		"warning: route-order.yaml: Ingress milvus/many-routes: spec.rules[3].http.paths[5]: duplicate of spec.rules[3].http.paths[0] (same host, path, path type and conditions); ignored",
	}},
	{name: "missing-service", want: []string{
		"error: missing-service.yaml: Ingress milvus/milvus-demo: spec.rules[0].http.paths[0].backend.service.name: Service milvus/milvus-demoo not found",
	}},
	{name: "missing-port", want: []string{
		"error: missing-port.yaml: Ingress milvus/wrong-number: spec.rules[0].http.paths[0].backend.service.port.number: Service milvus/milvus-demo has no port 19531 (ports: milvus 19530, metrics 9091)",
		`error: missing-port.yaml: Ingress milvus/wrong-name: spec.rules[0].http.paths[0].backend.service.port.name: Service milvus/milvus-demo has no port named "grpc" (ports: milvus 19530, metrics 9091)`,
	}},
	{name: "bad-listen-ports", want: []string{
		`error: bad-listen-ports.yaml: Ingress milvus/not-json: metadata.annotations[alb.ingress.kubernetes.io/listen-ports]: invalid listen-ports "[{\"HTTPS\":443]": want a JSON list such as [{"HTTP":80},{"HTTPS":443}]: invalid character ']' after object key:value pair`,
		`error: bad-listen-ports.yaml: Ingress milvus/unknown-protocol: metadata.annotations[alb.ingress.kubernetes.io/listen-ports]: unknown protocol "TCP" for port 19530: must be HTTP or HTTPS`,
		`error: bad-listen-ports.yaml: Ingress milvus/out-of-range: metadata.annotations[alb.ingress.kubernetes.io/listen-ports]: port 70000 of HTTP is out of range 1-65535`,
	}},
	{name: "bad-ssl-policy"},
	{name: "certificate-not-found", want: []string{
		"error: certificate-not-found.yaml: Ingress milvus/milvus-demo: metadata.annotations[alb.ingress.kubernetes.io/certificate-arn]: certificate arn:aws:acm:region:account-id:certificate/certificate-id not found; imported: " +
			"arn:milvus-lb:acm:local:000000000000:certificate/11111111-1111-4111-8111-111111111111, " +
			"arn:milvus-lb:acm:local:000000000000:certificate/22222222-2222-4222-8222-222222222222, " +
			"arn:milvus-lb:acm:local:000000000000:certificate/33333333-3333-4333-8333-333333333333",
	}},
	{name: "secret-errors", want: []string{
		"error: secret-errors.yaml: Ingress milvus/tls-secrets: spec.tls[0].secretName: Secret milvus/no-such-secret not found",
		`error: secret-errors.yaml: Ingress milvus/tls-secrets: spec.tls[1].secretName: Secret milvus/opaque-secret has type "Opaque"; want kubernetes.io/tls`,
		"error: secret-errors.yaml: Ingress milvus/tls-secrets: spec.tls[2].secretName: Secret milvus/mismatched-tls: tls.crt and tls.key are not a valid key pair: tls: private key does not match public key",
		"error: secret-errors.yaml: Ingress milvus/arn-bad-key: metadata.annotations[alb.ingress.kubernetes.io/certificate-arn]: certificate arn:milvus-lb:acm:local:000000000000:certificate/33333333-3333-4333-8333-333333333333 (Secret milvus-lb-system/milvus-lb-cert-badkey): tls.crt and tls.key are not a valid key pair: tls: private key does not match public key",
	}},
	{name: "https-no-certificate", want: []string{
		"error: https-no-certificate.yaml: Ingress milvus/milvus-demo: metadata.annotations[alb.ingress.kubernetes.io/listen-ports]: HTTPS port 443 has no certificate: set alb.ingress.kubernetes.io/certificate-arn or spec.tls",
	}},
	{name: "bad-target-group-attributes", want: []string{
		`error: bad-target-group-attributes.yaml: Ingress milvus/bad-values: metadata.annotations[alb.ingress.kubernetes.io/target-group-attributes]: invalid load_balancing.algorithm.type "fastest": must be one of round_robin, least_outstanding_requests, weighted_random`,
		`error: bad-target-group-attributes.yaml: Ingress milvus/bad-values: metadata.annotations[alb.ingress.kubernetes.io/target-group-attributes]: invalid deregistration_delay.timeout_seconds "4000": must be an integer from 0 to 3600`,
		`error: bad-target-group-attributes.yaml: Ingress milvus/bad-values: metadata.annotations[alb.ingress.kubernetes.io/target-group-attributes]: invalid slow_start.duration_seconds "10": must be 0 (off) or an integer from 30 to 900`,
		`error: bad-target-group-attributes.yaml: Ingress milvus/bad-values: metadata.annotations[alb.ingress.kubernetes.io/target-group-attributes]: invalid attribute "novalue": want key=value`,
		"warning: bad-target-group-attributes.yaml: Ingress milvus/good-values: metadata.annotations[alb.ingress.kubernetes.io/target-group-attributes]: target group attribute stickiness.enabled is not supported and is ignored",
	}},
	{name: "bad-health-check", want: []string{
		`error: bad-health-check.yaml: Ingress milvus/bad-numbers: metadata.annotations[alb.ingress.kubernetes.io/healthcheck-interval-seconds]: must be an integer from 5 to 300, got "1"`,
		`error: bad-health-check.yaml: Ingress milvus/bad-numbers: metadata.annotations[alb.ingress.kubernetes.io/healthcheck-timeout-seconds]: must be an integer from 2 to 120, got "ten"`,
		`error: bad-health-check.yaml: Ingress milvus/bad-numbers: metadata.annotations[alb.ingress.kubernetes.io/healthy-threshold-count]: must be an integer from 2 to 10, got "11"`,
		`error: bad-health-check.yaml: Ingress milvus/bad-numbers: metadata.annotations[alb.ingress.kubernetes.io/healthcheck-port]: invalid port "http": must be traffic-port or an integer from 1 to 65535`,
		`error: bad-health-check.yaml: Ingress milvus/bad-success-codes: metadata.annotations[alb.ingress.kubernetes.io/success-codes]: invalid success-codes "200": want gRPC status codes from 0 to 99, as a list (200,202) or a range (200-299)`,
		`error: bad-health-check.yaml: Ingress milvus/bad-timeout-path-type: metadata.annotations[alb.ingress.kubernetes.io/healthcheck-timeout-seconds]: timeout 10s must be shorter than the interval 10s`,
		`error: bad-health-check.yaml: Ingress milvus/bad-timeout-path-type: metadata.annotations[alb.ingress.kubernetes.io/healthcheck-path]: invalid path "healthz": must start with /`,
		`error: bad-health-check.yaml: Ingress milvus/bad-timeout-path-type: metadata.annotations[milvus-lb.io/healthcheck-type]: invalid value "tcp": must be one of milvus, grpc-health, grpc, http, none`,
	}},
	{name: "bad-protocols", want: []string{
		`error: bad-protocols.yaml: Ingress milvus/lower-case-grpc: metadata.annotations[alb.ingress.kubernetes.io/backend-protocol-version]: invalid value "grpc": must be one of GRPC, HTTP2, HTTP1`,
		`error: bad-protocols.yaml: Ingress milvus/others: metadata.annotations[alb.ingress.kubernetes.io/backend-protocol]: invalid value "TCP": must be one of HTTP, HTTPS`,
		`error: bad-protocols.yaml: Ingress milvus/others: metadata.annotations[alb.ingress.kubernetes.io/scheme]: invalid value "public": must be one of internal, internet-facing`,
		`error: bad-protocols.yaml: Ingress milvus/others: metadata.annotations[alb.ingress.kubernetes.io/target-type]: invalid value "pod": must be one of instance, ip`,
	}},
	{name: "bad-rules"},
	{name: "multiple-certs", want: []string{
		"warning: multiple-certs.yaml: Ingress milvus/milvus-demo: spec.rules[3].host: no certificate on port 443 covers host uncovered.milvus.io; clients get the default certificate arn:milvus-lb:acm:local:000000000000:certificate/11111111-1111-4111-8111-111111111111",
	}},
	{name: "group-merge", want: []string{
		"error: group-merge.yaml: Ingress milvus/same-route: spec.rules[0].http.paths[0]: host milvus-demo.milvus.io path \"/\" (Prefix) on port 443 is already routed by Ingress milvus/grpc",
		"error: group-merge.yaml: Ingress milvus/other-group: metadata.annotations[alb.ingress.kubernetes.io/group.name]: port 443 is served by Ingress milvus/grpc (group milvus); Ingresses of different groups cannot share a port",
		"error: group-merge.yaml: Ingress milvus/no-group: metadata.annotations[alb.ingress.kubernetes.io/listen-ports]: port 80 is served by Ingress milvus/grpc (group milvus); Ingresses of different groups cannot share a port",
		"error: group-merge.yaml: Ingress milvus/conflicting-policy: metadata.annotations[alb.ingress.kubernetes.io/ssl-policy]: port 443 already uses ssl-policy ELBSecurityPolicy-TLS13-1-2-Res-2021-06 set by Ingress milvus/rest",
	}},
	{name: "classes", clean: true},
	{name: "ignored-annotations", want: []string{
		"warning: ignored-annotations.yaml: Ingress milvus/milvus-demo: metadata.annotations[alb.ingress.kubernetes.io/load-balancer-attributes]: annotation alb.ingress.kubernetes.io/load-balancer-attributes is not supported and is ignored",
		"warning: ignored-annotations.yaml: Ingress milvus/milvus-demo: metadata.annotations[alb.ingress.kubernetes.io/group.order]: annotation alb.ingress.kubernetes.io/group.order is not supported and is ignored",
		"warning: ignored-annotations.yaml: Ingress milvus/milvus-demo: metadata.annotations[alb.ingress.kubernetes.io/wafv2-acl-arn]: annotation alb.ingress.kubernetes.io/wafv2-acl-arn is not supported and is ignored",
		"warning: ignored-annotations.yaml: Ingress milvus/milvus-demo: metadata.annotations[milvus-lb.io/health-check-type]: annotation milvus-lb.io/health-check-type is not known and is ignored; did you mean milvus-lb.io/healthcheck-type?",
	}},
	{name: "near-miss-annotations", want: []string{
		"warning: near-miss-annotations.yaml: Ingress milvus/milvus-demo: metadata.annotations[alb.ingres.kubernetes.io/listen-ports]: annotation alb.ingres.kubernetes.io/listen-ports is ignored; did you mean alb.ingress.kubernetes.io/listen-ports?",
		"warning: near-miss-annotations.yaml: Ingress milvus/milvus-demo: metadata.annotations[alb.ingress.kubernetes.io.backend-protocol-version]: annotation alb.ingress.kubernetes.io.backend-protocol-version is ignored; did you mean alb.ingress.kubernetes.io/backend-protocol-version?",
		"warning: near-miss-annotations.yaml: Ingress milvus/milvus-demo: metadata.annotations[alb.ingress.kubernetes.io/target-typ]: annotation alb.ingress.kubernetes.io/target-typ is not supported and is ignored; did you mean alb.ingress.kubernetes.io/target-type?",
		"warning: near-miss-annotations.yaml: Ingress milvus/milvus-demo: metadata.annotations[milvuslb.io/healthcheck-type]: annotation milvuslb.io/healthcheck-type is ignored; did you mean milvus-lb.io/healthcheck-type?",
		"warning: near-miss-annotations.yaml: Ingress milvus/milvus-demo: metadata.annotations[milvuslb.io/anything]: annotation milvuslb.io/anything is ignored; did you mean the prefix milvus-lb.io/?",
		"warning: near-miss-annotations.yaml: Ingress milvus/milvus-demo: metadata.annotations[ALB.ingress.kubernetes.io/scheme]: annotation ALB.ingress.kubernetes.io/scheme is ignored; did you mean alb.ingress.kubernetes.io/scheme?",
	}, exact: true},
	{name: "unserved-class", want: []string{
		`warning: unserved-class.yaml: Ingress milvus/typo: spec.ingressClassName: class "abl" is not served and no IngressClass of that name exists: not served; served classes: alb, milvus-lb (--ingress-class); did you mean alb?`,
		`warning: unserved-class.yaml: Ingress milvus/legacy-unknown: metadata.annotations[kubernetes.io/ingress.class]: class "internal" is not served and no IngressClass of that name exists: not served; served classes: alb, milvus-lb (--ingress-class)`,
		"warning: unserved-class.yaml: Ingress milvus/no-class: spec.ingressClassName: no class and no default IngressClass: not served; set spec.ingressClassName to a served class (alb, milvus-lb)",
	}, exact: true},
	{name: "health-check-kinds"},
	{name: "resilience", clean: true},
	{name: "bad-resilience", want: []string{
		"error: bad-resilience.yaml: Ingress milvus/bad-ejection-times: metadata.annotations[milvus-lb.io/outlier-detection]: max_ejection_time 10s is shorter than the base ejection time 30s",
		`error: bad-resilience.yaml: Ingress milvus/bad-outlier: metadata.annotations[milvus-lb.io/outlier-detection]: invalid base_ejection_time "30": must be a duration from 1s to 24h, such as 30s or 5m`,
		`error: bad-resilience.yaml: Ingress milvus/bad-outlier: metadata.annotations[milvus-lb.io/outlier-detection]: invalid consecutive_failures "0": must be an integer from 1 to 100`,
		`error: bad-resilience.yaml: Ingress milvus/bad-outlier: metadata.annotations[milvus-lb.io/outlier-detection]: invalid max_ejection_percent "150": must be an integer from 1 to 100`,
		`error: bad-resilience.yaml: Ingress milvus/bad-outlier: metadata.annotations[milvus-lb.io/outlier-detection]: invalid attribute "novalue": want key=value`,
		`error: bad-resilience.yaml: Ingress milvus/bad-outlier: metadata.annotations[milvus-lb.io/outlier-detection]: unknown key "interval": want disabled, or consecutive_failures, base_ejection_time, max_ejection_time, max_ejection_percent`,
		`error: bad-resilience.yaml: Ingress milvus/bad-retries: metadata.annotations[milvus-lb.io/max-attempts]: must be an integer from 1 to 10, got "0"`,
		`error: bad-resilience.yaml: Ingress milvus/bad-retries: metadata.annotations[milvus-lb.io/max-inflight-per-endpoint]: must be an integer from 0 to 1000000, got "many"`,
		`error: bad-resilience.yaml: Ingress milvus/bad-retries: metadata.annotations[milvus-lb.io/max-inflight]: must be an integer from 0 to 1000000, got "-1"`,
		`error: bad-resilience.yaml: Ingress milvus/bad-retries: metadata.annotations[milvus-lb.io/retry-budget]: invalid attribute "20%": want key=value`,
		`error: bad-resilience.yaml: Ingress milvus/bad-retries: metadata.annotations[milvus-lb.io/retry-buffer-size]: invalid size "1Gi": want a quantity from 1Ki to 4Mi, such as 1Mi`,
	}},
	{name: "certificate-unused", want: []string{
		"warning: certificate-unused.yaml: Ingress milvus/milvus-demo: metadata.annotations[alb.ingress.kubernetes.io/certificate-arn]: unused: listen-ports declares no HTTPS port",
	}},
	{name: "shared-backend", want: []string{
		"warning: shared-backend.yaml: Ingress milvus/second: spec.rules[0].http.paths[0].backend.service.name: backend milvus/milvus-demo:19530 is also used by Ingress milvus/first with different target group settings (protocol, health check or attributes); the settings of milvus/first apply",
	}},
	{name: "chain-order", want: []string{
		"error: chain-order.yaml: Ingress milvus/out-of-order: spec.tls[0].secretName: Secret milvus/chain-out-of-order: tls.crt is out of order: certificate 1 (CN=*.milvus.io) is not issued by certificate 2 (CN=milvus-lb test root) after it; list the server certificate first, then its issuer, then that one's issuer, up to the root",
	}},
	{name: "mutual-authentication", opts: Options{ReadFile: testdataFile}, want: []string{
		"error: mutual-authentication.yaml: Ingress milvus/conflicting-mode: metadata.annotations[alb.ingress.kubernetes.io/mutual-authentication]: port 443 already uses mutual-authentication verify with trust store client-ca.pem set by Ingress milvus/mtls",
		`error: mutual-authentication.yaml: Ingress milvus/bad-entries: metadata.annotations[alb.ingress.kubernetes.io/mutual-authentication]: entry 1 (port 10443): unknown mode "strict": must be off, passthrough or verify`,
		"error: mutual-authentication.yaml: Ingress milvus/bad-entries: metadata.annotations[alb.ingress.kubernetes.io/mutual-authentication]: entry 2 (port 10444): mode verify needs a trustStore (a PEM file of the CA certificates that issue client certificates)",
		"error: mutual-authentication.yaml: Ingress milvus/bad-entries: metadata.annotations[alb.ingress.kubernetes.io/mutual-authentication]: entry 3 (port 10445): trustStore is only used with mode verify, not passthrough",
		"error: mutual-authentication.yaml: Ingress milvus/bad-entries: metadata.annotations[alb.ingress.kubernetes.io/mutual-authentication]: port 10446: trustStore arn:aws:elasticloadbalancing:us-east-1:123456789012:truststore/clients/0123456789abcdef: an ELB trust store ARN cannot be read outside AWS: give the path of a PEM file of the CA certificates instead",
		"error: mutual-authentication.yaml: Ingress milvus/bad-entries: metadata.annotations[alb.ingress.kubernetes.io/mutual-authentication]: port 10447: trustStore missing.pem: cannot read missing.pem: no such file or directory",
		"error: mutual-authentication.yaml: Ingress milvus/bad-entries: metadata.annotations[alb.ingress.kubernetes.io/mutual-authentication]: entry 6 (port 10447): port 10447 is listed more than once",
		"error: mutual-authentication.yaml: Ingress milvus/bad-entries: metadata.annotations[alb.ingress.kubernetes.io/mutual-authentication]: port 8080 is an HTTP listener; mutual authentication needs HTTPS",
		"error: mutual-authentication.yaml: Ingress milvus/bad-entries: metadata.annotations[alb.ingress.kubernetes.io/mutual-authentication]: port 10448 is not in listen-ports",
		"error: mutual-authentication.yaml: Ingress milvus/bad-entries: metadata.annotations[alb.ingress.kubernetes.io/mutual-authentication]: entry 9 (port 10449): ignoreClientCertificateExpiry true is not supported: expired client certificates are always refused",
		`error: mutual-authentication.yaml: Ingress milvus/not-json: metadata.annotations[alb.ingress.kubernetes.io/mutual-authentication]: invalid mutual-authentication "[{\"port\":11443,\"mode\":\"verify\",\"trustStore\":\"client-ca.pem\",\"trustStoreArn\":\"x\"}]": want a JSON list such as [{"port":443,"mode":"verify","trustStore":"/path/to/ca-bundle.pem"}]: json: unknown field "trustStoreArn"`,
	}},
	{name: "actions", files: []string{"clusters.yaml"}, clean: true},
	{name: "conditions", files: []string{"clusters.yaml"}, clean: true},
	{name: "milvus-conditions", files: []string{"clusters.yaml"}, clean: true},
	{name: "bad-actions", files: []string{"clusters.yaml"}, want: []string{
		"error: bad-actions.yaml: Ingress milvus/bad-forward: metadata.annotations[alb.ingress.kubernetes.io/actions.bad-targets]: forwardConfig.targetGroups[2].serviceName: Service milvus/milvus-purple not found",
		`error: bad-actions.yaml: Ingress milvus/bad-forward: metadata.annotations[alb.ingress.kubernetes.io/actions.bad-targets]: forwardConfig.targetGroups[3].servicePort: Service milvus/milvus-green has no port named "grpc" (ports: milvus 19530)`,
		"error: bad-actions.yaml: Ingress milvus/bad-forward: metadata.annotations[alb.ingress.kubernetes.io/actions.no-weights]: forwardConfig.targetGroups[0].weight: required when forwarding to several target groups",
		"error: bad-actions.yaml: Ingress milvus/bad-forward: metadata.annotations[alb.ingress.kubernetes.io/actions.all-zero]: forwardConfig.targetGroups: every weight is 0; at least one target group must take calls",
		"error: bad-actions.yaml: Ingress milvus/bad-forward: spec.rules[0].http.paths[5].backend.service.port.name: use-annotation needs the annotation alb.ingress.kubernetes.io/actions.missing",
		`error: bad-actions.yaml: Ingress milvus/bad-types: metadata.annotations[alb.ingress.kubernetes.io/actions.bad-status]: fixedResponseConfig.statusCode: "302": must be a 2XX, 4XX or 5XX status code, as a string`,
		`warning: bad-actions.yaml: Ingress milvus/unused: metadata.annotations[alb.ingress.kubernetes.io/actions.spare]: not used: no path has backend service name "spare" with port name use-annotation`,
	}},
	{name: "bad-conditions", want: []string{
		`error: bad-conditions.yaml: Ingress milvus/bad-alb: metadata.annotations[alb.ingress.kubernetes.io/conditions.b]: [0].sourceIPConfig.values[0]: "10.0.0.1": want an address block in CIDR form, such as 10.0.0.0/8 or 2001:db8::/32`,
		`error: bad-conditions.yaml: Ingress milvus/bad-alb: metadata.annotations[alb.ingress.kubernetes.io/conditions.b]: [6].field: unknown field "database": must be one of host-header, path-pattern, http-header, http-request-method, query-string, source-ip (database goes in milvus-lb.io/conditions.${name})`,
		`error: bad-conditions.yaml: Ingress milvus/bad-milvus: metadata.annotations[milvus-lb.io/conditions.milvus-demo]: [1].consistencyLevelConfig.values[0]: "strong": must be one of Strong, Session, Bounded, Eventually, Customized`,
		`warning: bad-conditions.yaml: Ingress milvus/unused-conditions: metadata.annotations[alb.ingress.kubernetes.io/conditions.milvus-demo]: not used: no path of spec.rules has backend service name "milvus-demo" (conditions do not apply to spec.defaultBackend)`,
	}},
	{name: "rate-limits", want: []string{
		"error: rate-limits.yaml: Ingress milvus/bad-limits: metadata.annotations[milvus-lb.io/rate-limits]: [3].bytes: limits the bytes of write calls, and operation selects no write",
		`error: rate-limits.yaml: Ingress milvus/bad-limits: metadata.annotations[milvus-lb.io/rate-limits]: [8].name: "twice" is used twice`,
		`error: rate-limits.yaml: Ingress milvus/not-json-limits: metadata.annotations[milvus-lb.io/rate-limits]: invalid rate limits: want a JSON list such as [{"name":"reads-per-user","per":["user"],"operation":"read","calls":100}]: json: unknown field "rate"`,
	}},
	{name: "standby", files: []string{"clusters.yaml"}, want: []string{
		`error: standby.yaml: Ingress milvus/bad-field: metadata.annotations[milvus-lb.io/standby]: invalid standby "{\"service\":\"milvus-green\",\"servicePort\":19530}": want a JSON object such as {"serviceName":"milvus-standby","servicePort":19530}: json: unknown field "service"`,
		"error: standby.yaml: Ingress milvus/bad-mirror: metadata.annotations[milvus-lb.io/mirror]: mirror.percent: 0: must be from 1 to 100",
		`error: standby.yaml: Ingress milvus/bad-mirror-operation: metadata.annotations[milvus-lb.io/mirror]: mirror.operation: "search": must be read, write, ddl or admin`,
		"error: standby.yaml: Ingress milvus/bad-service: metadata.annotations[milvus-lb.io/standby]: standby.serviceName: Service milvus/milvus-purple not found",
		`error: standby.yaml: Ingress milvus/bad-staleness: metadata.annotations[milvus-lb.io/standby]: standby.staleness: "5": must be a duration more than 0 and at most 24h, such as 5s (how far behind the primary the standby may be)`,
		"error: standby.yaml: Ingress milvus/bad-weight: metadata.annotations[milvus-lb.io/standby]: standby.weight: 0: must be from 1 to 100 (the percent of stale-tolerant reads the standby takes)",
	}},
	{name: "cache", exact: true, want: []string{
		`error: cache.yaml: Ingress milvus/bad-method: metadata.annotations[milvus-lb.io/cache]: .methods[1]: "Insert": must be one of Search, HybridSearch, Query, DescribeCollection, HasCollection, ShowCollections, DescribeDatabase, ListDatabases, DescribeIndex, GetLoadState, DescribeAlias, ListAliases, each once`,
		`error: cache.yaml: Ingress milvus/bad-age: metadata.annotations[milvus-lb.io/cache]: .maxAge: "forever": must be a duration more than 0 and at most 24h, such as 30s`,
		`error: cache.yaml: Ingress milvus/bad-size: metadata.annotations[milvus-lb.io/cache]: .maxEntryBytes: 2147483648 is more than maxBytes (1073741824)`,
		`error: cache.yaml: Ingress milvus/not-json-cache: metadata.annotations[milvus-lb.io/cache]: invalid cache settings: want a JSON object such as {"maxAge":"30s","maxBytes":"256Mi"} ('{}' for the defaults): json: unknown field "ttl"`,
	}},
	{name: "duplicate-route", want: []string{
		`error: duplicate-route.yaml: Ingress milvus/second: spec.rules[0].http.paths[0]: host milvus-demo.milvus.io path "/" (Prefix) on port 80 is already routed by Ingress milvus/first`,
	}},
}

func TestTranslateFixtures(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := loadObjects(t, append(append([]string{tc.name + ".yaml"}, tc.files...), sharedFixtures...)...)
			model, problems := Translate(objs, tc.opts)
			got := golden{Model: model, Problems: problemLines(problems)}

			if tc.clean && len(got.Problems) > 0 {
				t.Errorf("want no problems, got:\n  %s", strings.Join(got.Problems, "\n  "))
			}
			for _, w := range tc.want {
				if !contains(got.Problems, w) {
					t.Errorf("missing problem:\n  %s\ngot:\n  %s", w, strings.Join(got.Problems, "\n  "))
				}
			}
			if tc.exact && len(got.Problems) != len(tc.want) {
				t.Errorf("want exactly the %d problems listed, got %d:\n  %s", len(tc.want), len(got.Problems), strings.Join(got.Problems, "\n  "))
			}

			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			path := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/ingress -update)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("%s differs from the output; if the change is intended, run go test ./internal/ingress -update and review the diff.\ngot:\n%s", path, out)
			}

			// Purity: the same objects in another order give the same result.
			reverse(objs)
			model2, problems2 := Translate(objs, tc.opts)
			out2, _ := json.MarshalIndent(golden{Model: model2, Problems: problemLines(problems2)}, "", "  ")
			if !bytes.Equal(append(out2, '\n'), out) {
				t.Errorf("output depends on the order of the objects")
			}
		})
	}
}

// testdataFile reads the files annotations name from testdata, as the file source would
// read them beside the manifest.
func testdataFile(path string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", path))
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func reverse(o Objects) {
	rev := func(n int, swap func(i, j int)) {
		for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
			swap(i, j)
		}
	}
	rev(len(o.Ingresses), func(i, j int) { o.Ingresses[i], o.Ingresses[j] = o.Ingresses[j], o.Ingresses[i] })
	rev(len(o.Services), func(i, j int) { o.Services[i], o.Services[j] = o.Services[j], o.Services[i] })
	rev(len(o.Secrets), func(i, j int) { o.Secrets[i], o.Secrets[j] = o.Secrets[j], o.Secrets[i] })
	rev(len(o.EndpointSlices), func(i, j int) {
		o.EndpointSlices[i], o.EndpointSlices[j] = o.EndpointSlices[j], o.EndpointSlices[i]
	})
	rev(len(o.IngressClasses), func(i, j int) {
		o.IngressClasses[i], o.IngressClasses[j] = o.IngressClasses[j], o.IngressClasses[i]
	})
}
