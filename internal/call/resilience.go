package call

import (
	"time"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// The rules for failing endpoints and overload, per call: outlier detection (outlier.go),
// retries (retry.go) and circuit breaking (breaker.go). The data path drives them through
// Call's methods, and they keep in the Call only the endpoints it tried and whether its
// current attempt's failure was counted:
//
//   - Pick admits the endpoint the picker chose (admit: the in-flight limits, and the
//     retry budget's count of calls being retried);
//   - ReplayLimit says how much of a request to keep for sending it again; HoldReply
//     whether to hold a reply's headers until its Milvus Status is read, and ReplyHeld
//     what that Status means for the attempt (replyhold.go);
//   - Failed (Retry with AttemptOf: the Stage, the Reason read from the error) counts a
//     failed attempt against its endpoint and decides whether the call goes to another
//     one, never past the deadline of the ctx it is given;
//   - Finish settles the last attempt when the backend answered it (settle), and ends the
//     call's hold on the retry budget.
//
// Each failure is reported once: through Failed, after which the data path answers the
// client with the Failure it returns or relays the backend's own answer (UNAVAILABLE, or
// a held "not ready" reply that could not go elsewhere: settle then leaves it alone), or,
// for a reply the backend sent and the data path relayed unheld (a write's "not ready"
// status), by Finish.

// Events receives what the resilience rules decide, for metrics. The port's Observer
// gets them when it implements Events. Implementations must be cheap, must not block and
// must be safe for concurrent use.
type Events interface {
	// Ejected: endpoint of backend is ejected for d after failures for reason.
	Ejected(backend, endpoint string, reason Reason, d time.Duration)
	// Overflowed: a call over a circuit breaker's limit was answered at once;
	// perEndpoint tells the per-endpoint limit from the backend's.
	Overflowed(backend string, perEndpoint bool)
	// RetryDenied: a call that could safely have gone to another endpoint did not,
	// because the backend's retry budget was spent.
	RetryDenied(backend string)
}

// events is the port's Events, or nil.
func (c *Call) events() Events {
	e, _ := c.port.Observer.(Events)
	return e
}

// policy is the routed backend's resilience policy, defaults resolved.
func (c *Call) policy() *config.Resilience { return &c.be.Policy }
