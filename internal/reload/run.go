package reload

import (
	"context"
	"errors"

	"github.com/milvus-lb/milvus-lb/internal/config"
	"github.com/milvus-lb/milvus-lb/internal/ingress"
)

// Source is where sets of objects come from: source.Files (serve) or source.Kube
// (controller). Run calls apply with every new set, one call at a time, until ctx ends.
type Source interface {
	Run(ctx context.Context, apply func(ingress.Objects, config.Problems)) error
}

// StartError is Run's error when the first set of objects is refused: a balancer that has
// never served does not start on a configuration it cannot serve.
type StartError struct {
	Result Result // the refused reload, with every problem
}

func (e *StartError) Error() string { return "refusing to start: " + e.Result.Err.Error() }
func (e *StartError) Unwrap() error { return e.Result.Err }

// Run reloads every set of objects src provides until ctx ends, and returns nil then. It
// returns early with a *StartError if the first set is refused, or with src's error if
// src fails. Either way it returns only after src.Run has, so that no reload happens
// after it.
func (p *Pipeline) Run(ctx context.Context, src Source) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	srcDone := make(chan error, 1)
	go func() {
		srcDone <- src.Run(ctx, func(objs ingress.Objects, problems config.Problems) {
			if res := p.Reload(ctx, objs, problems); res.Err != nil && !p.served.Load() {
				cancel(&StartError{Result: res})
			}
		})
	}()
	var err error
	select {
	case <-ctx.Done():
		<-srcDone // the source ends with ctx
	case err = <-srcDone:
	}
	var start *StartError
	switch {
	case errors.As(context.Cause(ctx), &start):
		return start
	case ctx.Err() != nil:
		return nil // the caller's ctx ended: its shutdown
	}
	return err
}
