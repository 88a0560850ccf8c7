package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

// Fuzzing of everything a manifest's author controls: the YAML itself, then the
// annotation values of an otherwise valid guide Ingress. Seeds are every manifest in the
// source and ingress testdata plus the corpora under testdata/fuzz/<FuzzName>; a crash
// found by `go test -fuzz` is written there and stays a regression test.

// noFiles keeps translation hermetic: a fuzzed mutual-authentication annotation must not
// read files of the machine running the fuzzer.
func noFiles(string) ([]byte, error) {
	return nil, errors.New("reading files is disabled while fuzzing")
}

var fuzzOpts = ingress.Options{ReadFile: noFiles}

// translateChecked translates objs twice and fails t if translation is not deterministic
// or returns a problem that would tell its reader nothing.
func translateChecked(t *testing.T, objs ingress.Objects) {
	t.Helper()
	m1, p1 := ingress.Translate(objs, fuzzOpts)
	m2, p2 := ingress.Translate(objs, fuzzOpts)
	j1, err1 := json.Marshal(m1)
	j2, err2 := json.Marshal(m2)
	if err1 != nil || err2 != nil {
		t.Errorf("model does not marshal: %v %v", err1, err2)
		return
	}
	if !bytes.Equal(j1, j2) || !reflect.DeepEqual(p1, p2) {
		t.Errorf("translation is not deterministic:\n%s\n%s\n%v\n%v", j1, j2, p1, p2)
	}
	checkProblems(t, p1)
}

func checkProblems(t *testing.T, ps config.Problems) {
	t.Helper()
	for _, p := range ps {
		if p.Message == "" || (p.Severity != config.Error && p.Severity != config.Warning) {
			t.Errorf("problem without a message or severity: %+v", p)
			return
		}
	}
}

func addSeedFiles(f *testing.F, globs ...string) {
	for _, g := range globs {
		names, _ := filepath.Glob(g)
		for _, n := range names {
			data, err := os.ReadFile(n)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
}

// FuzzParseManifest: any bytes as a manifest file, then translation of whatever objects
// came out. Neither may panic; problems must say something; translation is deterministic.
func FuzzParseManifest(f *testing.F) {
	addSeedFiles(f, "testdata/*.yaml", "testdata/*.json", "../ingress/testdata/*.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		within(t, 5*time.Second, func() {
			objs, problems := ParseManifest("fuzz.yaml", data)
			checkProblems(t, problems)
			for _, p := range problems {
				if p.File != "fuzz.yaml" {
					t.Errorf("problem does not name the file: %+v", p)
				}
			}
			translateChecked(t, objs)
		})
	})
}

// within runs fn and fails t if it takes longer than limit: a manifest is read on every
// reload, and one that stalls the reader stalls the balancer's configuration.
func within(t *testing.T, limit time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("took more than %v", limit)
	}
}

// guideObjects are the guide's Ingress, Service, EndpointSlice and certificate Secret.
func guideObjects(f *testing.F) ingress.Objects {
	var all ingress.Objects
	for _, n := range []string{"guide.yaml", "milvus.yaml", "secrets.yaml"} {
		data, err := os.ReadFile(filepath.Join("../ingress/testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		objs, problems := ParseManifest(n, data)
		if errs := problems.Errors(); len(errs) > 0 {
			f.Fatalf("%s: %v", n, errs)
		}
		all.Ingresses = append(all.Ingresses, objs.Ingresses...)
		all.Services = append(all.Services, objs.Services...)
		all.EndpointSlices = append(all.EndpointSlices, objs.EndpointSlices...)
		all.Endpoints = append(all.Endpoints, objs.Endpoints...)
		all.Secrets = append(all.Secrets, objs.Secrets...)
		all.IngressClasses = append(all.IngressClasses, objs.IngressClasses...)
	}
	if len(all.Ingresses) != 1 {
		f.Fatalf("guide.yaml has %d Ingresses, want 1", len(all.Ingresses))
	}
	return all
}

// FuzzTranslateAnnotations: the guide's Ingress with fuzzed values of the annotations
// whose values have a syntax of their own (JSON, lists, key=value pairs, numbers, codes).
func FuzzTranslateAnnotations(f *testing.F) {
	base := guideObjects(f)
	f.Add(`[{"HTTPS":443}]`, "", "", "", "", "", "", "")
	f.Add(`[{"HTTP":80},{"HTTPS":443}]`, "deregistration_delay.timeout_seconds=30,load_balancing.algorithm.type=least_outstanding_requests",
		"0-99", "arn:a,arn:b", "/milvus.proto.milvus.MilvusService/CheckHealth", "10", "5", "verify")
	f.Add(`[{"HTTPS":443},{"HTTPS":443}]`, "stickiness.enabled=true,weighted_random", "200,300-399", " , ,", "/healthz", "0", "-1", `{"mode":"passthrough"}`)
	f.Add(`[{"HTTPS":65536}]`, "=,=,==", "12", "", "", "9999999999999999999", "1e9", `{"mode":"verify","trustStore":"/etc/passwd"}`)
	f.Fuzz(func(t *testing.T, listenPorts, tgAttrs, successCodes, certARNs, hcPath, hcInterval, hcTimeout, mtls string) {
		ing := base.Ingresses[0].DeepCopy()
		a := ing.Annotations
		set := func(key, v string) {
			if v != "" {
				a[key] = v
			}
		}
		set(ingress.AnnotationListenPorts, listenPorts)
		set(ingress.AnnotationTargetGroupAttributes, tgAttrs)
		set(ingress.AnnotationSuccessCodes, successCodes)
		if certARNs != "" {
			// Keep the guide's real certificate in the list, so that translation goes
			// on past the certificate lookup.
			a[ingress.AnnotationCertificateARN] += "," + certARNs
		}
		set(ingress.AnnotationHealthCheckPath, hcPath)
		set(ingress.AnnotationHealthCheckInterval, hcInterval)
		set(ingress.AnnotationHealthCheckTimeout, hcTimeout)
		set(ingress.AnnotationMutualAuthentication, mtls)
		objs := base
		objs.Ingresses = []*networkingv1.Ingress{ing}
		translateChecked(t, objs)
		_, problems := ingress.Translate(objs, fuzzOpts)
		for _, p := range problems {
			if p.Severity == config.Error && p.Object == "" {
				t.Fatalf("an error in an Ingress's annotations names no object: %+v", p)
			}
		}
	})
}
