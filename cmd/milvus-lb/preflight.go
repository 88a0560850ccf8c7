package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/milvus-lb/milvus-lb/internal/certs"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gatewayapi"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/listener"
	"github.com/milvus-lb/milvus-lb/internal/source"
)

// The checks validate and serve make before anything starts, for mistakes that would
// otherwise fail later, far from their cause (a port that cannot be bound), or not fail
// at all (files in which nothing is served).

// addPreflightFlags adds the flags of validate's checks.
func addPreflightFlags(cmd *cobra.Command) {
	cmd.Flags().Bool("allow-empty", false, "exit 0 even when no Ingress is served")
}

// preflight returns validate's findings beyond translation's: every port this process
// may not bind, and, unless --allow-empty, that no Ingress is served at all. problems are
// translation's: when they hold errors, those explain the empty result already.
func preflight(cmd *cobra.Command, model *config.Model, problems config.Problems) config.Problems {
	out := portProblems(model)
	allowEmpty, _ := cmd.Flags().GetBool("allow-empty")
	if allowEmpty || len(problems.Errors()) > 0 {
		return out
	}
	served := 0
	for _, in := range model.Ingresses {
		if in.Served {
			served++
		}
	}
	switch {
	case servesGateways(model):
		// Gateway listeners are served even when no Ingress is.
	case len(model.Ingresses) == 0:
		out = append(out, config.Problem{Severity: config.Error,
			Message: "no Ingress or Gateway in the files: nothing would be served (--allow-empty accepts that)"})
	case served == 0:
		out = append(out, config.Problem{Severity: config.Error,
			Message: fmt.Sprintf("none of the %d Ingress(es) is served (see the warnings about their class): nothing would be served (--allow-empty accepts that)", len(model.Ingresses))})
	}
	return out
}

// preflightServe refuses to start serve, before any socket is opened, when the files ask
// for a port this process may not bind. Any other problem is left to serve's own report.
func preflightServe(cmd *cobra.Command, files []string, store *certs.Store, classes []string) error {
	objs, problems := source.Load(files, store)
	model, more := gatewayapi.TranslateAll(objs, ingress.Options{Classes: classes})
	if len(problems.Errors()) > 0 || len(more.Errors()) > 0 {
		return nil
	}
	ps := portProblems(model)
	if len(ps) == 0 {
		return nil
	}
	fmt.Fprint(cmd.ErrOrStderr(), ps.Report())
	return fmt.Errorf("refusing to start: %d port(s) cannot be bound by this process", len(ps))
}

// portProblems names, for each listener port this process may not bind, the first
// Ingress (by namespace and name) that asks for it.
func portProblems(model *config.Model) config.Problems {
	var out config.Problems
	for _, l := range model.Listeners {
		err := listener.PortPermission(l.Port)
		if err == nil {
			continue
		}
		p := config.Problem{Severity: config.Error, Message: err.Error()}
		for _, in := range model.Ingresses {
			if in.Served && slices.Contains(in.Ports, l.Port) {
				p.File, p.Object = in.Source, ingress.ObjectName("Ingress", in.Namespace, in.Name)
				p.Field = field.NewPath("metadata", "annotations").Key(ingress.AnnotationListenPorts).String()
				break
			}
		}
		out = append(out, p)
	}
	return out
}

// servesGateways reports whether some Gateway of a served class has a served listener.
func servesGateways(model *config.Model) bool {
	if model.GatewayAPI == nil {
		return false
	}
	for _, g := range model.GatewayAPI.Gateways {
		for _, c := range g.Conditions {
			if c.Type == "Programmed" && c.Status {
				return true
			}
		}
	}
	return false
}
