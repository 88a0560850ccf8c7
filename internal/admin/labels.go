package admin

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// otherLabel stands for the values of a capped label beyond its limit.
const otherLabel = "_other"

// collectionLabels bounds the db and collection label values: the first limit distinct
// values of each are kept, later ones read "_other" (first come: a client naming many
// collections that do not exist can use up the room). Safe for concurrent use; a value
// already admitted costs one lock-free map read.
type collectionLabels struct {
	db, collection cappedSet
}

func newCollectionLabels(limit int) *collectionLabels {
	return &collectionLabels{db: cappedSet{limit: int64(limit)}, collection: cappedSet{limit: int64(limit)}}
}

func (c *collectionLabels) values(db, collection string) (string, string) {
	return c.db.value(db), c.collection.value(collection)
}

type cappedSet struct {
	limit int64
	n     atomic.Int64
	seen  sync.Map // string -> struct{}
	mu    sync.Mutex
}

func (s *cappedSet) value(v string) string {
	if v == "" {
		return ""
	}
	if _, ok := s.seen.Load(v); ok {
		return v
	}
	if s.n.Load() >= s.limit {
		return otherLabel
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen.Load(v); ok {
		return v
	}
	if s.n.Load() >= s.limit {
		return otherLabel
	}
	s.seen.Store(strings.Clone(v), struct{}{})
	s.n.Add(1)
	return v
}

// labelValues lists the values of label among the series of the family named name.
func labelValues(g prometheus.Gatherer, name, label string) []string {
	mfs, err := g.Gather()
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && !seen[lp.GetValue()] {
					seen[lp.GetValue()] = true
					out = append(out, lp.GetValue())
				}
			}
		}
	}
	return out
}
