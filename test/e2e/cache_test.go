package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-lb/milvus-lb/internal/testkit/testenv"
)

// TestCacheRealMilvus is milvus-lb.io/cache with real pymilvus and milvus-lite, through the
// guide's balancer (test/clients/cache_check.py): repeated searches are answered from the
// cache with identical results; a row inserted is seen at once by Strong and Session
// searches, and by Eventually searches through an alias or the collection's name whichever
// it was inserted through; an alias swap is seen at once; a row inserted directly into
// milvus-lite, which milvus-lb cannot see, is seen by every Bounded search once the
// Ingress's bound (1 s) has passed. The hits are read from milvus-lb's metrics.
//
// With MILVUS_LB_CACHE_LARGE_ROWS=N[,N...] it also loads collections of N 768-dim rows
// (milvus-lite's AUTOINDEX) and times cached against uncached searches on it, for
// docs/benchmarks.md; off by default: loading 20,000 rows takes tens of seconds.
func TestCacheRealMilvus(t *testing.T) {
	g := prepareGuide(t, testenv.FreePort(t))
	ing := strings.Replace(testenv.GuideIngress(t, g.arn, g.port), "  annotations:\n",
		"  annotations:\n    milvus-lb.io/cache: '{\"boundedStaleness\":\"1s\"}'\n", 1)
	writeFile(t, g.ingressFile(), ing)
	g.serve(t)

	argv := []string{testenv.Python(t), testenv.Root(t) + "/test/clients/cache_check.py",
		"--host", g.address, "--port", strconv.Itoa(g.port), "--server-name", host, "--ca", g.ca,
		"--direct-port", strconv.Itoa(g.lite.Port), "--bounded", "1"}
	timeout := clientTimeout
	if n := os.Getenv("MILVUS_LB_CACHE_LARGE_ROWS"); n != "" {
		argv, timeout = append(argv, "--large-rows", n, "--server-pid", strconv.Itoa(g.lite.Pid())), 20*time.Minute
	}
	testenv.RunClient(t, timeout, "cache_check: PASS", argv...)

	hits := cacheRequests(t, g.lb.AdminAddr, "Search", "hit")
	t.Logf("Search: %v hits, %v misses, %v bypassed", hits,
		cacheRequests(t, g.lb.AdminAddr, "Search", "miss"), cacheRequests(t, g.lb.AdminAddr, "Search", "bypass"))
	if hits < 20 {
		t.Fatalf("%v Search calls answered from the cache, want at least the 20 repeated ones", hits)
	}
}

// cacheRequests reads milvus_lb_cache_requests_total for method and result.
func cacheRequests(t *testing.T, admin, method, result string) float64 {
	t.Helper()
	return metricSum(t, fetch(t, "http://"+admin+"/metrics"), "milvus_lb_cache_requests_total", `method="`+method+`"`, `result="`+result+`"`)
}
