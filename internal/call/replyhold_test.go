package call

import (
	"context"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/milvus-lb/milvus-lb/internal/config"
)

// A read's reply is held while another attempt is left; a write's never is.
func TestHoldReply(t *testing.T) {
	p, _, _ := resilientPort(t, 3, config.Resilience{Retry: config.RetryPolicy{MaxAttempts: 2}})
	c := routed(t, p, search)
	wiredPick(c)
	if !c.HoldReply() {
		t.Error("a Search on its first of 2 attempts: reply not held")
	}
	if retry, _ := c.Retry(context.Background(), AttemptOf(ErrNotServing, BeforeReply, true)); !retry {
		t.Fatal("a Search whose reply said not serving was not retried")
	}
	wiredPick(c)
	if c.HoldReply() {
		t.Error("a Search on its last attempt: reply held, though nothing could be done with it")
	}
	wiredFinish(c, "0")

	w := routed(t, p, insert)
	wiredPick(w)
	if w.HoldReply() {
		t.Error("an Insert's reply held: a write is never retried on what its reply says")
	}
	wiredFinish(w, "0")

	off, _, _ := resilientPort(t, 3, config.Resilience{Retry: config.RetryPolicy{MaxAttempts: 1}})
	c = routed(t, off, search)
	wiredPick(c)
	if c.HoldReply() {
		t.Error("retries off: reply held")
	}
	wiredFinish(c, "0")
}

// The verdict on a held reply, from its first bytes as they come.
func TestReplyHeld(t *testing.T) {
	notReady := frame(t, &milvuspb.SearchResults{Status: &commonpb.Status{Code: 1, Reason: "service not ready"}})
	legacy := frame(t, &milvuspb.SearchResults{Status: &commonpb.Status{ErrorCode: commonpb.ErrorCode_NotReadyServe}})
	missing := frame(t, &milvuspb.SearchResults{Status: &commonpb.Status{Code: 100, Reason: "collection not found"}})
	ok := frame(t, &milvuspb.SearchResults{Status: &commonpb.Status{}, CollectionName: "c1"})
	p, _, _ := resilientPort(t, 3, config.Resilience{})
	for _, tc := range []struct {
		name  string
		reply []byte
		want  HeldReply
	}{
		{"not ready", notReady, ReplyNotServing},
		{"not ready, before 2.3", legacy, ReplyNotServing},
		{"not ready, first bytes", notReady[:PrefixLen+3], ReplyWait},
		{"collection not found", missing, ReplySend},
		{"success", ok, ReplySend},
	} {
		c := routed(t, p, search)
		wiredPick(c)
		reading := c.Response(tc.reply)
		if got := c.ReplyHeld(len(tc.reply), reading); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		wiredFinish(c, "0")
	}
	c := routed(t, p, search)
	wiredPick(c)
	c.Response(notReady[:PrefixLen+3])
	if got := c.ReplyHeld(ReplyHoldLimit, true); got != ReplySend {
		t.Errorf("Status unread after ReplyHoldLimit bytes: %v, want ReplySend", got)
	}
	wiredFinish(c, "0")
}

// A held "not ready" reply counts once against its endpoint, whether the read then goes
// elsewhere or, with nowhere to go, the reply is relayed and the call finishes with it.
func TestHeldNotServingCountsOnce(t *testing.T) {
	p, eps, ev := resilientPort(t, 2, config.Resilience{Outlier: config.OutlierDetection{ConsecutiveFailures: 2},
		Retry: config.RetryPolicy{MaxAttempts: 2}})
	notReady := frame(t, &milvuspb.SearchResults{Status: &commonpb.Status{Code: 1}})
	// Both attempts answered "not ready": the first goes elsewhere, the second is relayed.
	c := routed(t, p, search)
	first, _ := wiredPick(c)
	c.Response(notReady)
	if retry, _ := c.Retry(context.Background(), AttemptOf(ErrNotServing, BeforeReply, true)); !retry {
		t.Fatal("not retried")
	}
	second, _ := wiredPick(c)
	if second == first {
		t.Fatal("the retry went to the endpoint that was not serving")
	}
	c.Response(notReady)
	if got := c.ReplyHeld(len(notReady), false); got != ReplyNotServing {
		t.Fatalf("second reply: %v", got)
	}
	if retry, _ := c.Retry(context.Background(), AttemptOf(ErrNotServing, BeforeReply, true)); retry {
		t.Fatal("retried past max attempts")
	}
	wiredFinish(c, "0")
	if c.Rec.Attempts != 2 || c.Rec.MilvusCode != 1 {
		t.Errorf("record: %d attempts, Milvus code %d; want 2 and the relayed reply's 1", c.Rec.Attempts, c.Rec.MilvusCode)
	}
	if len(ev.ejected) != 0 {
		t.Fatalf("one failure on each endpoint ejected %v: the relayed reply was counted twice", ev.ejected)
	}
	for _, ep := range eps {
		if !ep.Available(time.Now().UnixNano()) {
			t.Fatalf("%s ejected after one failure", ep.Addr)
		}
	}
}
