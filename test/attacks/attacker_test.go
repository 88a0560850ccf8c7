package attacks

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// Attacks that run flat out are run from a process of their own (this test binary again,
// as TestAttackerProcess) with GOMAXPROCS=1 and a lower CPU priority: in production the
// attacker is another machine, and on a 2-core machine an in-process attacker would be
// measured competing with the balancer for CPU rather than the balancer's defences.

// attackers are the attacks that can run in a process of their own, by name.
var attackers = map[string]func(ctx context.Context, l *lb, s []*floodStats){
	// Rapid reset (CVE-2023-44487): HEADERS then RST_STREAM, 64 streams per write, as fast
	// as the connection goes, on one h2c and one TLS connection.
	"rapid-reset": func(ctx context.Context, l *lb, s []*floodStats) {
		block := grpcHeaders("GetVersion")
		var wg sync.WaitGroup
		for i, useTLS := range []bool{false, true} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var id uint32
				flood(ctx, l, s[i], 1, useTLS, true,
					func(*rawConn) error { id = 1; return nil },
					func(c *rawConn) error {
						for range 64 {
							if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}); err != nil {
								return err
							}
							if err := c.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
								return err
							}
							id += 2
						}
						s[i].frames.Add(128)
						return c.bw.Flush()
					})
			}()
		}
		wg.Wait()
	},
	// A header block that never ends: empty CONTINUATION frames as fast as possible.
	"empty-continuation": func(ctx context.Context, l *lb, s []*floodStats) {
		start := grpcHeaders("GetVersion")
		flood(ctx, l, s[0], 1, true, true, func(c *rawConn) error {
			return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: start})
		}, func(c *rawConn) error {
			for range 256 {
				if err := c.fr.WriteContinuation(1, false, nil); err != nil {
					return err
				}
			}
			s[0].frames.Add(256)
			return c.bw.Flush()
		})
	},
}

// attackerResult is what an attacker process reports, one per floodStats.
type attackerResult struct {
	Conns  int
	Closed []time.Duration
	How    map[string]int
	Frames int64
}

const resultPrefix = "ATTACKER-RESULT "

// attackFromProcess runs the named attack against l from another process for d and
// returns its statistics (one per connection group of the attack).
func (l *lb) attackFromProcess(ctx context.Context, name string, d time.Duration) ([]*floodStats, error) {
	cmd := exec.CommandContext(ctx, "nice", "-n", "10", os.Args[0], "-test.run=^TestAttackerProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "ATTACKER_NAME="+name,
		"ATTACKER_PLAIN="+strconv.Itoa(l.plain), "ATTACKER_TLS="+strconv.Itoa(l.tlsPort), "ATTACKER_DURATION="+d.String())
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("attacker process: %w\n%s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), resultPrefix)
		if !ok {
			continue
		}
		var rs []attackerResult
		if err := json.Unmarshal([]byte(line), &rs); err != nil {
			return nil, err
		}
		var stats []*floodStats
		for _, r := range rs {
			s := &floodStats{conns: r.Conns, closed: r.Closed, how: r.How}
			s.frames.Store(r.Frames)
			stats = append(stats, s)
		}
		return stats, nil
	}
	return nil, fmt.Errorf("attacker process reported nothing:\n%s", out)
}

// TestAttackerProcess is the attacker process of attackFromProcess; run alone, it skips.
func TestAttackerProcess(t *testing.T) {
	name := os.Getenv("ATTACKER_NAME")
	if name == "" {
		t.Skip("runs only as the attacker process of the attack tests")
	}
	attack := attackers[name]
	if attack == nil {
		t.Fatalf("no attack %q", name)
	}
	plain, _ := strconv.Atoi(os.Getenv("ATTACKER_PLAIN"))
	tlsPort, _ := strconv.Atoi(os.Getenv("ATTACKER_TLS"))
	d, err := time.ParseDuration(os.Getenv("ATTACKER_DURATION"))
	if err != nil {
		t.Fatal(err)
	}
	l := &lb{plain: plain, tlsPort: tlsPort}
	stats := []*floodStats{{}, {}}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	attack(ctx, l, stats)
	var rs []attackerResult
	for _, s := range stats {
		rs = append(rs, attackerResult{Conns: s.conns, Closed: s.closed, How: s.how, Frames: s.frames.Load()})
	}
	b, _ := json.Marshal(rs)
	fmt.Println(resultPrefix + string(b))
}
