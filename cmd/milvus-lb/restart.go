package main

import (
	"context"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/milvus-lb/milvus-lb/internal/handoff"
)

// restartOptions are serve's flags for restarts in place (internal/handoff,
// docs/operations.md).
type restartOptions struct {
	PIDFile string
	Timeout time.Duration
}

func addRestartFlags(cmd *cobra.Command, r *restartOptions) {
	f := cmd.Flags()
	f.StringVar(&r.PIDFile, "pid-file", "", "write the process id here once serving, and again after every restart in place (SIGHUP)")
	f.DurationVar(&r.Timeout, "restart-timeout", time.Minute, "how long the new process of a restart in place (SIGHUP) has to serve before it is stopped and the old one serves on")
}

// withRestarts makes serve restart in place on SIGHUP: its listening sockets come from
// the handoff (inherited from a predecessor, handed to a successor), it tells the
// handoff when it serves, and the context it returns ends when a successor took over.
func withRestarts(ctx context.Context, o *dataPlaneOptions, r restartOptions) (context.Context, error) {
	logger := newLogger(o.LogLevel)
	handshake := o.Listener.HandshakeTimeout
	if handshake <= 0 {
		handshake = 10 * time.Second // the listeners' own default for 0
	}
	h, err := handoff.New(logger, r.PIDFile, r.Timeout, handshake)
	if err != nil {
		return nil, err
	}
	o.Listener.ListenFunc = h.Listen
	next := o.Ready
	o.Ready = func(admin net.Addr) {
		if err := h.Ready(); err != nil {
			logger.Error("restart in place: cannot say this process serves", "error", err)
		}
		if next != nil {
			next(admin)
		}
	}
	return h.Watch(ctx), nil
}
