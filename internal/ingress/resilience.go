package ingress

import (
	"iter"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// milvus-lb's own annotations for failing endpoints and overload (config.Resilience). Each
// is optional; what is not given keeps the default documented in config and README.
const (
	// AnnotationOutlierDetection: "disabled" (not "off", which YAML reads as false), or
	// key=value pairs: consecutive_failures (1-100),
	// base_ejection_time and max_ejection_time (durations such as 30s or 5m, from 1s to
	// 24h), max_ejection_percent (1-100).
	AnnotationOutlierDetection = "milvus-lb.io/outlier-detection"
	// AnnotationMaxAttempts: endpoints one call may try, the first included (1-10; 1
	// turns retries off).
	AnnotationMaxAttempts = "milvus-lb.io/max-attempts"
	// AnnotationRetryBudget: key=value pairs: percent (1-100) of the calls in flight that
	// may be retries, min_per_second (1-10000) retries allowed beyond that.
	AnnotationRetryBudget = "milvus-lb.io/retry-budget"
	// AnnotationRetryBufferSize: the largest request kept to be sent again, as a
	// Kubernetes quantity (1Mi, 512Ki; from 1Ki to 4Mi, what the relay keeps at most for
	// all the calls of one client connection).
	AnnotationRetryBufferSize = "milvus-lb.io/retry-buffer-size"
	// AnnotationMaxInflight and AnnotationMaxInflightPerEndpoint bound the calls in flight
	// to the backend and to any one endpoint (0-1000000; 0, the default, is no bound).
	AnnotationMaxInflight            = "milvus-lb.io/max-inflight"
	AnnotationMaxInflightPerEndpoint = "milvus-lb.io/max-inflight-per-endpoint"
)

// resilienceAnnotations are the annotations parseResilience reads.
var resilienceAnnotations = []string{AnnotationOutlierDetection, AnnotationMaxAttempts, AnnotationRetryBudget,
	AnnotationRetryBufferSize, AnnotationMaxInflight, AnnotationMaxInflightPerEndpoint}

// parseResilience reads the resilience annotations. Invalid values are reported against
// their annotation and leave the default.
func parseResilience(a annotations) config.Resilience {
	var r config.Resilience
	parseOutlierDetection(a, &r.Outlier)
	if _, ok := a.get(AnnotationMaxAttempts); ok {
		r.Retry.MaxAttempts = a.intIn(AnnotationMaxAttempts, 1, 10, 0)
	}
	for key, val := range attributes(a, AnnotationRetryBudget) {
		switch key {
		case "percent":
			r.Retry.BudgetPercent = attrInt(a, AnnotationRetryBudget, key, val, 1, 100)
		case "min_per_second":
			r.Retry.MinRetriesPerSecond = attrInt(a, AnnotationRetryBudget, key, val, 1, 10000)
		default:
			a.errorf(AnnotationRetryBudget, "unknown key %q: want percent or min_per_second", key)
		}
	}
	if v, ok := a.get(AnnotationRetryBufferSize); ok {
		q, err := resource.ParseQuantity(v)
		if n, exact := q.AsInt64(); err != nil || !exact || n < 1<<10 || n > 4<<20 {
			a.errorf(AnnotationRetryBufferSize, "invalid size %q: want a quantity from 1Ki to 4Mi, such as 1Mi", v)
		} else {
			r.Retry.MaxReplayBytes = n
		}
	}
	r.Limits.MaxInflight = a.intIn(AnnotationMaxInflight, 0, 1000000, 0)
	r.Limits.MaxInflightPerEndpoint = a.intIn(AnnotationMaxInflightPerEndpoint, 0, 1000000, 0)
	return r
}

// parseOutlierDetection reads milvus-lb.io/outlier-detection into o.
func parseOutlierDetection(a annotations, o *config.OutlierDetection) {
	const name = AnnotationOutlierDetection
	if v, _ := a.get(name); v == "disabled" {
		o.Disabled = true
		return
	}
	for key, val := range attributes(a, name) {
		switch key {
		case "consecutive_failures":
			o.ConsecutiveFailures = attrInt(a, name, key, val, 1, 100)
		case "max_ejection_percent":
			o.MaxEjectionPercent = attrInt(a, name, key, val, 1, 100)
		case "base_ejection_time":
			o.BaseEjectionTime = attrDuration(a, name, key, val)
		case "max_ejection_time":
			o.MaxEjectionTime = attrDuration(a, name, key, val)
		default:
			a.errorf(name, "unknown key %q: want disabled, or consecutive_failures, base_ejection_time, max_ejection_time, max_ejection_percent", key)
		}
	}
	base := config.Resilience{Outlier: *o}.Resolved().Outlier.BaseEjectionTime
	if o.MaxEjectionTime != 0 && o.MaxEjectionTime < base {
		a.errorf(name, "max_ejection_time %v is shorter than the base ejection time %v", o.MaxEjectionTime.D(), base.D())
		o.MaxEjectionTime = 0
	}
}

// attributes yields the key=value pairs of a comma-separated annotation, reporting the
// pairs that are not one.
func attributes(a annotations, name string) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		v, ok := a.get(name)
		if !ok {
			return
		}
		for kv := range strings.SplitSeq(v, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			key, val, found := strings.Cut(kv, "=")
			key, val = strings.TrimSpace(key), strings.TrimSpace(val)
			if !found || key == "" {
				a.errorf(name, "invalid attribute %q: want key=value", kv)
				continue
			}
			if !yield(key, val) {
				return
			}
		}
	}
}

// attrInt parses the integer value of key within [lo, hi]; 0 (the default) after
// reporting anything else.
func attrInt(a annotations, name, key, val string, lo, hi int) int {
	n, err := strconv.Atoi(val)
	if err != nil || n < lo || n > hi {
		a.errorf(name, "invalid %s %q: must be an integer from %d to %d", key, val, lo, hi)
		return 0
	}
	return n
}

// attrDuration parses the duration value of key, from 1s to 24h; 0 (the default) after
// reporting anything else.
func attrDuration(a annotations, name, key, val string) config.Duration {
	d, err := time.ParseDuration(val)
	if err != nil || d < time.Second || d > 24*time.Hour {
		a.errorf(name, "invalid %s %q: must be a duration from 1s to 24h, such as 30s or 5m", key, val)
		return 0
	}
	return config.Duration(d)
}
