package config

import "time"

// Resilience is a backend's policy for failing endpoints and overload: passive outlier
// detection, retries, and circuit breaking. The translator stores what the Ingress's
// milvus-lb.io/ annotations say and nothing else; a zero field means the default below,
// which Resolved fills in. So a model written by hand (tests, tools) gets the same
// behaviour as an Ingress without the annotations, and the defaults live here only.
type Resilience struct {
	Outlier OutlierDetection `json:"outlierDetection,omitzero"`
	Retry   RetryPolicy      `json:"retry,omitzero"`
	Limits  CircuitBreaker   `json:"circuitBreaker,omitzero"`
}

// OutlierDetection ejects an endpoint after consecutive gateway failures seen on real
// calls, as Envoy's outlier detection does with consecutive_gateway_failure.
type OutlierDetection struct {
	// Disabled turns ejection off for the backend.
	Disabled bool `json:"disabled,omitempty"`
	// ConsecutiveFailures in a row eject the endpoint (default 5).
	ConsecutiveFailures int `json:"consecutiveFailures,omitempty"`
	// BaseEjectionTime is the first ejection's length; the n-th ejection in a row lasts
	// n times as long (default 30s).
	BaseEjectionTime Duration `json:"baseEjectionTime,omitempty"`
	// MaxEjectionTime caps an ejection's length (default 300s).
	MaxEjectionTime Duration `json:"maxEjectionTime,omitempty"`
	// MaxEjectionPercent of a backend's endpoints may be ejected at once (default 50).
	MaxEjectionPercent int `json:"maxEjectionPercent,omitempty"`
}

// RetryPolicy says how a call that failed safely may go to another endpoint.
type RetryPolicy struct {
	// MaxAttempts is the most endpoints one call tries, the first included (default 3;
	// 1 turns retries off).
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// BudgetPercent bounds the retries in flight to this share of the backend's calls in
	// flight (default 20).
	BudgetPercent int `json:"budgetPercent,omitempty"`
	// MinRetriesPerSecond are allowed even beyond the share, so that a backend with few
	// calls in flight can still retry (default 10).
	MinRetriesPerSecond int `json:"minRetriesPerSecond,omitempty"`
	// MaxReplayBytes is the largest request kept for sending again (default 1 MiB): a
	// Search fits, a 64 MiB Insert is not retried once its bytes went out.
	MaxReplayBytes int64 `json:"maxReplayBytes,omitempty"`
}

// CircuitBreaker bounds the calls in flight; a call over a bound is answered at once
// with UNAVAILABLE. Zero means no bound (the default).
type CircuitBreaker struct {
	MaxInflight            int `json:"maxInflight,omitempty"`            // over the whole backend
	MaxInflightPerEndpoint int `json:"maxInflightPerEndpoint,omitempty"` // on any one endpoint
}

// The defaults of Resilience's zero fields.
const (
	DefaultConsecutiveFailures = 5
	DefaultBaseEjectionTime    = 30 * time.Second
	DefaultMaxEjectionTime     = 300 * time.Second
	DefaultMaxEjectionPercent  = 50
	DefaultMaxAttempts         = 3
	DefaultBudgetPercent       = 20
	DefaultMinRetriesPerSecond = 10
	DefaultMaxReplayBytes      = 1 << 20
)

// Resolved returns r with every zero field set to its default.
func (r Resilience) Resolved() Resilience {
	o := &r.Outlier
	o.ConsecutiveFailures = orDefault(o.ConsecutiveFailures, DefaultConsecutiveFailures)
	o.BaseEjectionTime = orDefault(o.BaseEjectionTime, Duration(DefaultBaseEjectionTime))
	o.MaxEjectionTime = orDefault(o.MaxEjectionTime, max(Duration(DefaultMaxEjectionTime), o.BaseEjectionTime))
	o.MaxEjectionPercent = orDefault(o.MaxEjectionPercent, DefaultMaxEjectionPercent)
	p := &r.Retry
	p.MaxAttempts = orDefault(p.MaxAttempts, DefaultMaxAttempts)
	p.BudgetPercent = orDefault(p.BudgetPercent, DefaultBudgetPercent)
	p.MinRetriesPerSecond = orDefault(p.MinRetriesPerSecond, DefaultMinRetriesPerSecond)
	p.MaxReplayBytes = orDefault(p.MaxReplayBytes, DefaultMaxReplayBytes)
	return r
}

func orDefault[T int | int64 | Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}
