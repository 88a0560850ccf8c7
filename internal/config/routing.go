package config

// ConditionField names what a Condition tests of a call.
type ConditionField string

// The fields of the ALB's conditions (alb.ingress.kubernetes.io/conditions.*), with the
// ALB's meaning, and milvus-lb's own fields, read from the call's first request message
// (milvus-lb.io/conditions.*). docs/annotations.md says how each one matches.
const (
	FieldHostHeader  ConditionField = "host-header"         // Values: host patterns
	FieldPathPattern ConditionField = "path-pattern"        // Values: path patterns
	FieldHTTPHeader  ConditionField = "http-header"         // Name, Values: value patterns
	FieldMethod      ConditionField = "http-request-method" // Values: methods
	FieldQueryString ConditionField = "query-string"        // Query
	FieldSourceIP    ConditionField = "source-ip"           // Values: CIDRs

	FieldDatabase    ConditionField = "database"          // Values: names or patterns
	FieldCollection  ConditionField = "collection"        // Values: names or patterns
	FieldOperation   ConditionField = "operation"         // Values: read, write, ddl, admin
	FieldConsistency ConditionField = "consistency_level" // Values: Strong, Session, ...
)

// Condition is one test of a call. It holds when any of its values matches; a route
// applies when all of its conditions hold. Patterns take the ALB's wildcards: * for any
// run of characters, ? for one.
type Condition struct {
	Field  ConditionField `json:"field"`
	Name   string         `json:"name,omitempty"` // http-header: the header, lower case
	Values []string       `json:"values,omitempty"`
	Query  []QueryValue   `json:"query,omitempty"` // query-string
	// Exact compares Values and Query as written, with case and without wildcards (the
	// Gateway API's Exact matches); the ALB's conditions leave it false.
	Exact bool `json:"exact,omitempty"`
}

// QueryValue is one query-string match: a parameter Key (any key when empty) whose value
// matches the Value pattern.
type QueryValue struct {
	Key   string `json:"key,omitempty"`
	Value string `json:"value"`
}

// Message reports whether the condition reads the call's first request message (so the
// data path must see its first bytes before the route can be chosen).
func (c Condition) Message() bool {
	switch c.Field {
	case FieldDatabase, FieldCollection, FieldConsistency:
		return true
	}
	return false
}

// WeightedBackend is one target group of a weighted forward: calls go to Backend in
// proportion to Weight among the route's targets.
type WeightedBackend struct {
	Backend string `json:"backend"` // Backend.Key
	Weight  int    `json:"weight"`
}

// FixedResponse is an answer the balancer gives itself, as the ALB's fixed-response
// action: REST clients get it as written; gRPC clients get the status code that gRPC maps
// the HTTP status to, with the body as the message.
type FixedResponse struct {
	StatusCode  int    `json:"statusCode"`
	ContentType string `json:"contentType,omitempty"`
	MessageBody string `json:"messageBody,omitempty"`
}

// RateLimit is one limit of milvus-lb.io/rate-limits: token buckets for the calls that
// match all of its selectors (an empty selector matches every call), one bucket per
// distinct value of the Per keys (one bucket in all when Per is empty).
type RateLimit struct {
	Name        string   `json:"name"`
	Users       []string `json:"users,omitempty"`       // patterns
	Databases   []string `json:"databases,omitempty"`   // patterns
	Collections []string `json:"collections,omitempty"` // patterns
	Operations  []string `json:"operations,omitempty"`  // read, write, ddl, admin
	Per         []string `json:"per,omitempty"`         // user, database, collection, operation
	// Calls is the rate in calls per second; 0 means no call limit.
	Calls float64 `json:"calls,omitempty"`
	// Bytes is the rate of request bytes per second of write calls; 0 means none.
	Bytes float64 `json:"bytes,omitempty"`
	// Burst is how many seconds' worth of calls (and bytes) a bucket holds; 0 means
	// ratelimit.DefaultBurst.
	Burst float64 `json:"burst,omitempty"`
}
