package source

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The kinds are found from what the API server serves: each in v1, ReferenceGrant in
// v1beta1 when its CRD has no v1; without the CRDs, nothing (only Ingresses are served).
func TestGatewayResources(t *testing.T) {
	client := fake.NewClientset()
	if got := GatewayResources(client.Discovery()); len(got) != 0 {
		t.Fatalf("without CRDs: %v", got)
	}
	client.Resources = []*metav1.APIResourceList{
		{GroupVersion: GatewayGroup + "/v1", APIResources: []metav1.APIResource{
			{Name: "gatewayclasses"}, {Name: "gateways"}, {Name: "grpcroutes"}, {Name: "httproutes"}}},
		{GroupVersion: GatewayGroup + "/v1beta1", APIResources: []metav1.APIResource{
			{Name: "gateways"}, {Name: "referencegrants"}}},
	}
	got := GatewayResources(client.Discovery())
	if len(got) != 5 || got["Gateway"].Version != "v1" || got["ReferenceGrant"].Version != "v1beta1" || got["GRPCRoute"].Resource != "grpcroutes" {
		t.Errorf("found %v", got)
	}
}
