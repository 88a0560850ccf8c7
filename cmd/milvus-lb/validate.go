package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/milvus-lb/milvus-lb/internal/balancer"
	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/gateway"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
	"github.com/milvus-lb/milvus-lb/internal/reload"
	"github.com/milvus-lb/milvus-lb/internal/source"
)

func newValidateCmd() *cobra.Command {
	var (
		files    []string
		stateDir string
		classes  []string
	)
	cmd := &cobra.Command{
		Use:   "validate -f FILE [-f FILE...]",
		Short: "Check manifest files as serve would, reporting every problem with file, object and field",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("validate needs at least one -f FILE")
			}
			store, err := openStore(stateDir)
			if err != nil {
				return err
			}
			// The pipeline serve runs, with a gateway that opens no port: what translation
			// accepts must also compile (certificates parse, ports are unique).
			objs, problems := source.Load(files, store)
			gw := gateway.New(balancer.NewRegistry(), nil, nil, nil)
			res := reload.New(reload.Options{Gateway: gw, Translate: ingress.Options{Classes: classes}, RejectOnError: true}).
				Reload(cmd.Context(), objs, problems)
			problems, model := res.Problems, res.Model
			problems = append(problems, preflight(cmd, model, problems)...)
			problems.Sort()
			out := cmd.OutOrStdout()
			fmt.Fprint(out, problems.Report())
			if errs := problems.Errors(); len(errs) > 0 {
				fmt.Fprintf(out, "%d error(s), %d warning(s)\n", len(errs), len(problems)-len(errs))
				return exitError{1}
			}
			if res.Err != nil {
				fmt.Fprintf(out, "error: %v\n", res.Err)
				return exitError{1}
			}
			served := 0
			for _, in := range model.Ingresses {
				if in.Served {
					served++
				}
			}
			gateways := ""
			if model.GatewayAPI != nil {
				gateways = fmt.Sprintf(", %d gateway(s) and %d route(s)", len(model.GatewayAPI.Gateways), len(model.GatewayAPI.Routes))
			}
			fmt.Fprintf(out, "valid: %d ingress(es)%s served on %s, %d backend(s), %d warning(s)\n",
				served, gateways, describePorts(model.Listeners), len(model.Backends), len(problems))
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file or directory (repeatable)")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "state directory holding imported certificates (default "+defaultStateDirHelp()+")")
	cmd.Flags().StringSliceVar(&classes, "ingress-class", ingress.DefaultClasses, "IngressClass names to serve")
	addPreflightFlags(cmd)
	return cmd
}

func describePorts(ls []config.Listener) string {
	if len(ls) == 0 {
		return "no port"
	}
	s := ""
	for i, l := range ls {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", l.Protocol, l.Port)
	}
	return s
}
