// Package pin keeps the conformance suite in this module's build list (and its sums in
// go.sum): scripts/gateway-conformance.sh builds `go test -c sigs.k8s.io/gateway-api/conformance`
// and the echo server from it.
package pin

import (
	_ "sigs.k8s.io/gateway-api/conformance"
	_ "sigs.k8s.io/gateway-api/conformance/echo-basic/grpc"
)
