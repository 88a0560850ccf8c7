package config

import (
	"testing"
	"time"
)

// A model that says nothing gets every default; what it says is kept; a base ejection
// time above the default maximum raises the maximum with it.
func TestResilienceResolved(t *testing.T) {
	r := Resilience{}.Resolved()
	if r.Outlier.ConsecutiveFailures != 5 || r.Outlier.BaseEjectionTime.D() != 30*time.Second ||
		r.Outlier.MaxEjectionTime.D() != 300*time.Second || r.Outlier.MaxEjectionPercent != 50 ||
		r.Retry.MaxAttempts != 3 || r.Retry.BudgetPercent != 20 || r.Retry.MinRetriesPerSecond != 10 ||
		r.Retry.MaxReplayBytes != 1<<20 || r.Limits != (CircuitBreaker{}) || r.Outlier.Disabled {
		t.Fatalf("defaults: %+v", r)
	}
	given := Resilience{Outlier: OutlierDetection{ConsecutiveFailures: 2, BaseEjectionTime: Duration(10 * time.Minute)},
		Retry: RetryPolicy{MaxAttempts: 1}, Limits: CircuitBreaker{MaxInflight: 7}}
	r = given.Resolved()
	if r.Outlier.ConsecutiveFailures != 2 || r.Retry.MaxAttempts != 1 || r.Limits.MaxInflight != 7 ||
		r.Outlier.MaxEjectionTime.D() != 10*time.Minute {
		t.Fatalf("given values: %+v", r)
	}
}
