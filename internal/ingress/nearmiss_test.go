package ingress

import "testing"

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"listen-ports", "listen-ports", 0},
		{"ingres", "ingress", 1},   // dropped
		{"ingresss", "ingress", 1}, // doubled
		{"ingerss", "ingress", 1},  // swapped
		{"io.listen", "io/listen", 1},
		{"nginx.ingress", "alb.ingress", 5},
		{"", "abc", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
