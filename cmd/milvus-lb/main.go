// Command milvus-lb is a Layer-7 load balancer for Milvus: it terminates TLS and balances
// Milvus gRPC (and REST) traffic per request, configured by the same Kubernetes Ingress
// manifests as the AWS Load Balancer Controller. This file holds wiring only; everything
// else lives under internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries an exit status for errors whose report was already printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	root := &cobra.Command{
		Use:           "milvus-lb",
		Short:         "A Layer-7 load balancer for Milvus, configured by Kubernetes Ingress manifests",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newValidateCmd(), newGetCmd(), newCertCmd(), newControllerCmd())
	addVersion(root)

	// SIGTERM and SIGINT start a graceful drain; a second signal exits at once.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	go func() {
		<-ctx.Done()
		stop()
	}()
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "milvus-lb:", err)
		os.Exit(1)
	}
}
