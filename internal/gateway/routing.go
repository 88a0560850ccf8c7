package gateway

import (
	"fmt"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// checkTargets makes sure every backend a route sends calls to is in the snapshot: its
// Backend, or each of its weighted Forward targets. A route with a fixed response or an
// SSL redirect needs none.
func checkTargets(r config.Route, backends map[string]*Backend) error {
	switch {
	case r.Fixed != nil, r.SSLRedirect != 0 && r.Backend == "":
		return nil
	case len(r.Forward) > 0:
		for _, t := range r.Forward {
			if backends[t.Backend] == nil {
				return fmt.Errorf("route %s%s forwards to unknown backend %q", r.Host, r.Path, t.Backend)
			}
		}
		return nil
	case backends[r.Backend] == nil && r.SSLRedirect == 0:
		return fmt.Errorf("route %s%s names unknown backend %q", r.Host, r.Path, r.Backend)
	}
	return nil
}
