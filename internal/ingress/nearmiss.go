package ingress

import (
	"sort"
	"strings"
)

// A misspelt annotation is not an error to Kubernetes: the API server stores any key, and
// an Ingress that says alb.ingres.kubernetes.io/listen-ports: '[{"HTTPS":8443}]' is served
// on the default port as if the line were not there. These helpers find the annotation a
// key was probably meant to be, so that the warning can name it.

// knownPrefixes are the annotation prefixes whose keys translation reads.
var knownPrefixes = []string{ALBAnnotationPrefix, "milvus-lb.io/"}

// maxKeyDistance is the largest edit distance between a key and an annotation translation
// reads for the key to count as a misspelling of it, after lower-casing the key (keys are
// case-sensitive, and every key translation reads is lower case). Two edits catch a dropped, doubled,
// swapped or replaced character ("ingres", ".listen-ports" for "/listen-ports", "milvuslb")
// while keeping other controllers' annotations apart: nginx.ingress.kubernetes.io/ is
// five edits from alb.ingress.kubernetes.io/, ingress.kubernetes.io/ four.
const maxKeyDistance = 2

// nearMiss returns the annotation that key was probably meant to be, or "" when key is
// not close to any annotation translation reads (or is one).
func nearMiss(key string) string {
	if supported[key] || key == AnnotationHealthCheckType {
		return ""
	}
	return nearestOf(key, SupportedAnnotations())
}

// nearMissPrefix returns the known prefix that key's prefix is a misspelling of, or ""
// when its prefix is a known one or not close to any. The prefix is what comes before
// the last '/' or, for a key without one, what comes before the known prefix's length
// ("alb.ingress.kubernetes.io.foo" has the prefix "alb.ingress.kubernetes.io.").
func nearMissPrefix(key string) string {
	for _, p := range knownPrefixes {
		if strings.HasPrefix(key, p) {
			return ""
		}
	}
	for _, p := range knownPrefixes {
		var have string
		if i := strings.LastIndexByte(key, '/'); i >= 0 {
			have = key[:i+1]
		} else if len(key) > len(p) {
			have = key[:len(p)]
		}
		if have != "" && editDistance(strings.ToLower(have), p) <= maxKeyDistance {
			return p
		}
	}
	return ""
}

// nearestOf returns the element of names closest to s within maxKeyDistance edits, or ""
// (also when s is one of them). Ties go to the first in sorted order, so the answer does
// not depend on map order.
func nearestOf(s string, names []string) string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	best, bestDist := "", maxKeyDistance+1
	for _, n := range sorted {
		if n == s {
			return ""
		}
		if d := editDistance(strings.ToLower(s), n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b: insertions,
// deletions, substitutions and transpositions of adjacent bytes each count one.
func editDistance(a, b string) int {
	// Three rows of the dynamic-programming table are enough: the current one, the one
	// before, and the one before that (for transpositions).
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
