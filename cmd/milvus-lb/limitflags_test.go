package main

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1048576": 1 << 20, "256Mi": 256 << 20, "64MiB": 64 << 20, "1Gi": 1 << 30, "16 KiB": 16 << 10, "7B": 7,
	} {
		got, err := parseSize(in, 1<<40)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5Mi", "10MB", "Mi", "2048Gi"} {
		if n, err := parseSize(in, 1<<40); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, n)
		}
	}
	for n, want := range map[int64]string{256 << 20: "256Mi", 1 << 30: "1Gi", 1000: "1000", 0: "0"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
