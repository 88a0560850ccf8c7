package adminpage

import (
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// demoBackendKey is the key of DemoModel's one backend.
const demoBackendKey = "milvus/milvus-demo:19530"

// DemoModel is the guide's setup as the model a data plane applies, for tests that run
// one in process (dataplane.New): host on an h2c port and an HTTPS port (the certificate
// given), every path to Service milvus/milvus-demo:19530 with the given endpoints, round
// robin, no health checks (the tests decide who is up), a 1 s deregistration delay.
func demoModel(host string, plainPort, tlsPort int, certPEM, keyPEM []byte, endpoints ...string) *config.Model {
	be := &config.Backend{
		Key: demoBackendKey, Service: "milvus/milvus-demo", Port: "19530",
		Protocol: config.BackendGRPC, Algorithm: config.RoundRobin,
		HealthCheck:         config.HealthCheck{Kind: config.CheckNone},
		DeregistrationDelay: config.Duration(time.Second),
	}
	for _, addr := range endpoints {
		be.Endpoints = append(be.Endpoints, config.Endpoint{Address: addr, Ready: true})
	}
	routes := []config.Route{{Host: host, Path: "/", PathType: config.PathPrefix, Backend: be.Key, Ingress: "milvus/milvus-demo"}}
	return &config.Model{
		Backends: map[string]*config.Backend{be.Key: be},
		Listeners: []config.Listener{
			{Port: plainPort, Protocol: config.HTTP, Routes: routes},
			{Port: tlsPort, Protocol: config.HTTPS, Routes: routes, Certificates: []config.Certificate{{Ref: "test", CertPEM: certPEM, KeyPEM: keyPEM}}},
		},
	}
}
