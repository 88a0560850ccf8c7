// Package source is where the Kubernetes objects that translation reads come from: files
// for standalone mode (`milvus-lb serve -f ...`), with reload on change, and an API server
// for controller mode.
package source

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

// kinds are the kinds translation reads, with the one apiVersion each is accepted in.
// Older versions (extensions/v1beta1 and networking.k8s.io/v1beta1 Ingress,
// discovery.k8s.io/v1beta1 EndpointSlice) were removed from Kubernetes in 1.22 and 1.25;
// converting them silently would hide fields that changed meaning (serviceName/servicePort
// became service.name/service.port), so they are refused with the version to use.
var kinds = map[string]struct {
	apiVersion    string
	alsoVersion   string // a second version accepted as the same type
	clusterScoped bool
}{
	"Ingress":       {apiVersion: "networking.k8s.io/v1"},
	"IngressClass":  {apiVersion: "networking.k8s.io/v1", clusterScoped: true},
	"Service":       {apiVersion: "v1"},
	"Endpoints":     {apiVersion: "v1"},
	"Secret":        {apiVersion: "v1"},
	"EndpointSlice": {apiVersion: "discovery.k8s.io/v1"},
	// For its labels only: Gateway listeners select route namespaces by them.
	"Namespace": {apiVersion: "v1", clusterScoped: true},

	"GatewayClass": {apiVersion: gatewayV1, clusterScoped: true},
	"Gateway":      {apiVersion: gatewayV1},
	"GRPCRoute":    {apiVersion: gatewayV1},
	"HTTPRoute":    {apiVersion: gatewayV1},
	// ReferenceGrant is v1 since Gateway API v1.5; manifests written earlier say v1beta1.
	"ReferenceGrant": {apiVersion: gatewayV1, alsoVersion: "gateway.networking.k8s.io/v1beta1"},
}

const gatewayV1 = "gateway.networking.k8s.io/v1"

// decoder decodes JSON strictly into the typed objects of the kinds above: an unknown or
// duplicate field is a strict-decoding error instead of being dropped, as
// `kubectl apply --validate=strict` does. No defaulting or conversion happens.
var decoder runtime.Decoder

func init() {
	scheme := runtime.NewScheme()
	utilruntime.Must(corev1.AddToScheme(scheme))
	utilruntime.Must(networkingv1.AddToScheme(scheme))
	utilruntime.Must(discoveryv1.AddToScheme(scheme))
	utilruntime.Must(gwv1.Install(scheme))
	utilruntime.Must(gwv1beta1.Install(scheme))
	decoder = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Strict: true})
}

// ParseManifest reads the Kubernetes objects in one file: YAML documents separated by
// "---" lines, or JSON (which is YAML), where a document may also be a `kind: List` whose
// items are objects. Objects of the kinds translation reads are decoded strictly into their
// typed form; others are skipped with a Warning. Every object in the result is recorded in
// Files under file. Objects that have an Error problem are left out; a file with errors
// still yields its good objects, so that one typo disables only what it is in.
//
// Namespaced objects without a namespace are in "default", as kubectl would put them with
// the default context. Secrets of a type other than kubernetes.io/tls are skipped: only TLS
// Secrets are read, for certificates; stringData is merged into data as the API server does.
func ParseManifest(file string, data []byte) (ingress.Objects, config.Problems) {
	p := &parser{file: file, objs: ingress.Objects{Files: map[string]string{}}, seen: map[string]string{}}
	for i, d := range splitDocuments(data) {
		p.document(docRef{n: i + 1, line: d.line}, d.text)
	}
	return p.objs, p.problems
}

type parser struct {
	file     string
	objs     ingress.Objects
	problems config.Problems
	seen     map[string]string // object name → where in the file it was first defined
}

// docRef says where a document, or an item of a List document, is in the file.
type docRef struct {
	n, line int
	item    int // 1-based index in a List's items; 0 for a whole document
}

func (d docRef) String() string {
	s := fmt.Sprintf("document %d at line %d", d.n, d.line)
	if d.item > 0 {
		s += fmt.Sprintf(", items[%d]", d.item-1)
	}
	return s
}

func (p *parser) add(sev config.Severity, object, field, format string, args ...any) {
	p.problems = append(p.problems, config.Problem{
		Severity: sev, File: p.file, Object: object, Field: field, Message: fmt.Sprintf(format, args...),
	})
}

// header is what is read of a document before its kind is known.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

func (p *parser) document(ref docRef, text []byte) {
	js, err := yaml.YAMLToJSON(text)
	if err != nil {
		p.add(config.Error, "", "", "%s: malformed YAML: %s", ref, yamlError(err, ref.line))
		return
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return // only comments, or an empty document between two "---"
	}
	// Keys given twice are almost always an edit gone wrong; YAMLToJSON keeps the last one
	// silently, so ask again strictly.
	var dupErr error
	if _, err := yaml.YAMLToJSONStrict(text); err != nil {
		dupErr = err
	}
	p.object(ref, js, dupErr)
}

// object decodes one object (or List) given as JSON.
func (p *parser) object(ref docRef, js []byte, dupErr error) {
	var h header
	if err := json.Unmarshal(js, &h); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field == "" {
			p.add(config.Error, "", "", "%s: a manifest must be an object with apiVersion, kind and metadata, not %s", ref, withArticle(typeErr.Value))
		} else {
			p.add(config.Error, "", "", "%s: %v", ref, err)
		}
		return
	}
	if h.Kind == "" {
		p.add(config.Error, "", "", "%s: kind is missing", ref)
		return
	}
	if h.Kind == "List" || (strings.HasSuffix(h.Kind, "List") && h.Items != nil) {
		p.list(ref, h, dupErr)
		return
	}
	name, ns, ok := p.identify(ref, h)
	if !ok {
		return
	}
	if dupErr != nil {
		p.add(config.Error, name, "", "%s", yamlError(dupErr, ref.line))
		return
	}
	obj, ok := p.decode(name, js)
	if !ok {
		return
	}
	if prev, dup := p.seen[name]; dup {
		p.add(config.Error, name, "", "defined twice in this file, in %s and %s; the first is used", prev, ref)
		return
	}
	if p.keep(name, ns, obj) {
		p.seen[name] = ref.String()
		p.objs.Files[name] = p.file
	}
}

// list reads the items of a List (kind List, or any *List with items), one level deep.
func (p *parser) list(ref docRef, h header, dupErr error) {
	if ref.item > 0 {
		p.add(config.Error, "", "", "%s: a List inside a List is not supported", ref)
		return
	}
	if dupErr != nil {
		p.add(config.Error, "", "", "%s: %s", ref, yamlError(dupErr, ref.line))
		return
	}
	for i, item := range h.Items {
		p.object(docRef{n: ref.n, line: ref.line, item: i + 1}, item, nil)
	}
}

// identify checks an object's kind, apiVersion and name, and returns its name for
// problems and its namespace (the default one when a namespaced object names none).
func (p *parser) identify(ref docRef, h header) (name, ns string, ok bool) {
	want, known := kinds[h.Kind]
	ns = h.Metadata.Namespace
	if known {
		if want.clusterScoped {
			ns = ""
		} else if ns == "" {
			ns = metav1.NamespaceDefault
		}
	}
	name = ingress.ObjectName(h.Kind, ns, h.Metadata.Name)
	switch {
	case !known:
		p.add(config.Warning, name, "", "kind %s is not used by milvus-lb and is ignored", h.Kind)
	case h.APIVersion == "":
		p.add(config.Error, name, "", "apiVersion is missing; use %s", want.apiVersion)
	case h.APIVersion != want.apiVersion && (want.alsoVersion == "" || h.APIVersion != want.alsoVersion):
		p.add(config.Error, name, "", "apiVersion %s is not supported for %s; use %s", h.APIVersion, h.Kind, want.apiVersion)
	case h.Metadata.Name == "":
		p.add(config.Error, h.Kind, "metadata.name", "required, but missing in %s", ref)
	default:
		return name, ns, true
	}
	return name, ns, false
}

// decode decodes an object strictly (unknown and duplicate fields are problems).
func (p *parser) decode(name string, js []byte) (runtime.Object, bool) {
	obj, _, err := decoder.Decode(js, nil, nil)
	if err == nil {
		return obj, true
	}
	var sde interface{ Errors() []error }
	if runtime.IsStrictDecodingError(err) && errors.As(err, &sde) {
		for _, e := range sde.Errors() {
			field, msg := strictError(e)
			p.add(config.Error, name, field, "%s", msg)
		}
		return nil, false
	}
	field, msg := decodeError(err)
	p.add(config.Error, name, field, "%s", msg)
	return nil, false
}

// keep adds a decoded object to the file's objects, in namespace ns.
func (p *parser) keep(name, ns string, obj runtime.Object) bool {
	switch o := obj.(type) {
	case *networkingv1.Ingress:
		o.Namespace = ns
		p.objs.Ingresses = append(p.objs.Ingresses, o)
	case *networkingv1.IngressClass:
		o.Namespace = ""
		p.objs.IngressClasses = append(p.objs.IngressClasses, o)
	case *corev1.Service:
		o.Namespace = ns
		p.objs.Services = append(p.objs.Services, o)
	case *corev1.Endpoints:
		o.Namespace = ns
		p.objs.Endpoints = append(p.objs.Endpoints, o)
	case *discoveryv1.EndpointSlice:
		o.Namespace = ns
		p.objs.EndpointSlices = append(p.objs.EndpointSlices, o)
	case *corev1.Secret:
		o.Namespace = ns
		if !p.secret(name, o) {
			return false
		}
		p.objs.Secrets = append(p.objs.Secrets, o)
	case *corev1.Namespace:
		o.Namespace = ""
		p.objs.Namespaces = append(p.objs.Namespaces, o)
	case *gwv1.GatewayClass:
		o.Namespace = ""
		p.objs.GatewayClasses = append(p.objs.GatewayClasses, o)
	case *gwv1.Gateway:
		o.Namespace = ns
		p.objs.Gateways = append(p.objs.Gateways, o)
	case *gwv1.GRPCRoute:
		o.Namespace = ns
		p.objs.GRPCRoutes = append(p.objs.GRPCRoutes, o)
	case *gwv1.HTTPRoute:
		o.Namespace = ns
		p.objs.HTTPRoutes = append(p.objs.HTTPRoutes, o)
	case *gwv1.ReferenceGrant:
		o.Namespace = ns
		p.objs.ReferenceGrants = append(p.objs.ReferenceGrants, o)
	case *gwv1beta1.ReferenceGrant:
		o.Namespace = ns
		p.objs.ReferenceGrants = append(p.objs.ReferenceGrants, (*gwv1.ReferenceGrant)(o))
	default:
		// The scheme knows more kinds of these groups than the table above lets through.
		p.add(config.Error, name, "", "internal error: decoded %T", obj)
		return false
	}
	return true
}

// secret checks a Secret as the API server would before storing it, and reports whether
// it is kept.
func (p *parser) secret(name string, s *corev1.Secret) bool {
	if s.Type != corev1.SecretTypeTLS {
		t := s.Type
		if t == "" {
			t = corev1.SecretTypeOpaque // the API server's default
		}
		p.add(config.Warning, name, "type", "Secret type %s is not used by milvus-lb and is ignored; certificates are read from %s Secrets",
			t, corev1.SecretTypeTLS)
		return false
	}
	// The API server writes stringData over data and never returns stringData.
	if len(s.StringData) > 0 && s.Data == nil {
		s.Data = make(map[string][]byte, len(s.StringData))
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
	ok := true
	for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		if _, found := s.Data[k]; !found {
			p.add(config.Error, name, "data["+k+"]", "required for a %s Secret", corev1.SecretTypeTLS)
			ok = false
		}
	}
	return ok
}

var (
	yamlLineRE     = regexp.MustCompile(`line (\d+)`)
	strictFieldRE  = regexp.MustCompile(`^(unknown|duplicate) field "(.*)"$`)
	jsonFieldTypeR = regexp.MustCompile(`^json: cannot unmarshal (\S+) into Go struct field \S+?\.(\S+) of type (\S+)$`)
)

// yamlError makes a YAML parser error read well in a problem: without the converter's
// prefix, on one line, and with line numbers counted from the top of the file rather
// than of the document.
func yamlError(err error, docLine int) string {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:")
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, ":\n", ": ")), " ")
	return yamlLineRE.ReplaceAllStringFunc(msg, func(s string) string {
		n, _ := strconv.Atoi(s[len("line "):])
		return "line " + strconv.Itoa(n+docLine-1)
	})
}

// strictError splits `unknown field "spec.rules[0].http.paths[0].pathtype"` into the
// field path and `unknown field "pathtype"`.
func strictError(e error) (field, msg string) {
	m := strictFieldRE.FindStringSubmatch(e.Error())
	if m == nil {
		return "", e.Error()
	}
	path := m[2]
	last := path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		last = path[i+1:]
	}
	return path, fmt.Sprintf("%s field %q", m[1], last)
}

// decodeError rewords encoding/json's errors, which name Go types, in terms of the
// manifest: "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port
// of type int32" becomes field "spec.ports.port", "got a string, want int32".
func decodeError(err error) (field, msg string) {
	msg = err.Error()
	if m := jsonFieldTypeR.FindStringSubmatch(msg); m != nil {
		return m[2], fmt.Sprintf("got %s, want %s", withArticle(m[1]), m[3])
	}
	// Only Secret data is base64 in the kinds read, and encoding/json does not say which
	// key held it.
	if strings.HasPrefix(msg, "illegal base64 data") {
		return "data", msg + " (data values are base64; put plain text in stringData)"
	}
	return "", msg
}

func withArticle(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

type document struct {
	text []byte
	line int // 1-based line of the document's first line in the file
}

// splitDocuments cuts a YAML stream at its "---" document markers, remembering where each
// document starts so that errors can name lines of the file. Text after "---" on the
// marker line (such as "--- # comment") stays with the document it starts.
func splitDocuments(data []byte) []document {
	var (
		docs []document
		cur  bytes.Buffer
		line = 1
		sc   = bufio.NewScanner(bytes.NewReader(data))
	)
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	cur.Grow(len(data))
	start := 1
	for sc.Scan() {
		l := sc.Bytes()
		if rest, ok := bytes.CutPrefix(l, []byte("---")); ok && (len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r') {
			docs = append(docs, document{text: bytes.Clone(cur.Bytes()), line: start})
			cur.Reset()
			start = line + 1
			if len(bytes.TrimSpace(rest)) > 0 {
				start = line
				cur.Write(rest)
				cur.WriteByte('\n')
			}
		} else {
			cur.Write(l)
			cur.WriteByte('\n')
		}
		line++
	}
	docs = append(docs, document{text: bytes.Clone(cur.Bytes()), line: start})
	// The first "document" before a leading "---" is usually empty; empty documents are
	// skipped by the caller, but numbering should match what a reader counts.
	if len(docs) > 1 && len(bytes.TrimSpace(docs[0].text)) == 0 {
		docs = docs[1:]
	}
	return docs
}
