package health

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Codes is a set of status codes written as the ALB's success-codes: a comma-separated
// list of codes and inclusive ranges, such as "200", "200,202", "200-299" or "0-99".
// The zero value matches nothing.
type Codes struct {
	ranges [][2]int
	text   string
}

// ParseCodes parses a success-codes value. Spaces around items are allowed; an empty
// value, a non-number, a negative code or a reversed range is an error.
func ParseCodes(s string) (Codes, error) {
	if strings.TrimSpace(s) == "" {
		return Codes{}, errors.New("success codes: empty")
	}
	var c Codes
	var norm []string
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isRange := strings.Cut(item, "-")
		from, err := parseCode(lo)
		if err != nil {
			return Codes{}, fmt.Errorf("success codes %q: %w", s, err)
		}
		to := from
		if isRange {
			if to, err = parseCode(hi); err != nil {
				return Codes{}, fmt.Errorf("success codes %q: %w", s, err)
			}
			if to < from {
				return Codes{}, fmt.Errorf("success codes %q: range %d-%d is reversed", s, from, to)
			}
			norm = append(norm, strconv.Itoa(from)+"-"+strconv.Itoa(to))
		} else {
			norm = append(norm, strconv.Itoa(from))
		}
		c.ranges = append(c.ranges, [2]int{from, to})
	}
	c.text = strings.Join(norm, ",")
	return c, nil
}

func parseCode(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 999 {
		return 0, fmt.Errorf("%q is not a status code", s)
	}
	return n, nil
}

// Match reports whether code is in the set.
func (c Codes) Match(code int) bool {
	for _, r := range c.ranges {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}

// String returns the set in its normalised written form ("200-299,302").
func (c Codes) String() string { return c.text }
