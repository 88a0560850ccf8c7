package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// accessLog is milvus-lb's --access-log file; every process of a restart in place
// appends to it.
type accessLog struct{ path string }

// accessCounts are the calls of a stretch of the access log.
type accessCounts struct {
	calls, ok, failed int
	retried           int // sent to more than one endpoint
	other             int // calls of other methods than Search, Query and Insert
}

// size is the log's length now, where a stretch starts.
func (a accessLog) size(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(a.path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// accessLine is one call of the access log, the fields the tests read.
type accessLine struct {
	Time         time.Time `json:"time"` // when its request headers arrived
	DurationMS   float64   `json:"duration_ms"`
	Method       string    `json:"method"`
	Endpoint     string    `json:"endpoint"`
	Attempts     int       `json:"attempts"`
	RequestBytes int64     `json:"request_bytes"`
	GRPCStatus   string    `json:"grpc_status"`
	MilvusCode   string    `json:"milvus_code"`
}

func (l accessLine) ok() bool { return l.GRPCStatus == "OK" && l.MilvusCode == "Success" }

// end is when the call ended.
func (l accessLine) end() time.Time {
	return l.Time.Add(time.Duration(l.DurationMS * float64(time.Millisecond)))
}

// lines are the calls logged from byte offset from on.
func (a accessLog) lines(t *testing.T, from int64) []accessLine {
	t.Helper()
	f, err := os.Open(a.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var ls []accessLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l accessLine
		if json.Unmarshal(sc.Bytes(), &l) == nil { // the last line may be half written
			ls = append(ls, l)
		}
	}
	return ls
}

// count counts the calls logged from byte offset from on; with endpoint set, only those
// whose last endpoint tried was that one.
func (a accessLog) count(t *testing.T, from int64, endpoint string) accessCounts {
	t.Helper()
	var n accessCounts
	for _, l := range a.lines(t, from) {
		if endpoint != "" && l.Endpoint != endpoint {
			continue
		}
		n.calls++
		if l.ok() {
			n.ok++
		} else {
			n.failed++
		}
		if l.Attempts > 1 {
			n.retried++
		}
		if l.Method != "Search" && l.Method != "Query" && l.Method != "Insert" {
			n.other++
		}
	}
	return n
}
