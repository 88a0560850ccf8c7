package harness

import (
	"context"
	"testing"
	"time"
)

// TestMirrorSmoke runs the mirror workload, tiny: whatever the mirror does (healthy, slow,
// down), no client call fails, the copies go to the mirror only when the annotation says
// so, and a mirror that cannot keep up has its copies sent or dropped, counted. Nothing
// about speed.
func TestMirrorSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts milvus-lb")
	}
	lb := buildMilvusLB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := RunMirror(ctx, t.TempDir(), lb, 300*time.Millisecond, 1, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 4 {
		t.Fatalf("%d scenarios, want 4", len(results))
	}
	for _, r := range results {
		if r.Calls == 0 || r.Failed != 0 || r.P99 <= 0 {
			t.Errorf("%s: %d calls, %d failed, p99 %v; want calls, none failed", r.Scenario, r.Calls, r.Failed, r.P99)
		}
		mirrored := r.Copies + r.Dropped
		switch {
		case r.Scenario == "no mirror" && mirrored != 0:
			t.Errorf("no mirror: %d copies sent or dropped", mirrored)
		case r.Scenario != "no mirror" && mirrored == 0:
			t.Errorf("%s: no copy sent or dropped of %d calls", r.Scenario, r.Calls)
		}
	}
}
