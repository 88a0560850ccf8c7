// Package glob matches names against patterns with the ALB's wildcards: * matches any run
// of characters (none included), ? exactly one. Routing conditions and rate limits use it.
package glob

import "strings"

// Pattern is one compiled pattern. fold compares ASCII letters without case, as the ALB
// compares host names, header values and query strings (path patterns and Milvus names
// are compared with case). Immutable.
type Pattern struct {
	p    string // lower-cased when fold
	fold bool
	wild bool // p has a wildcard
}

// New compiles p.
func New(p string, fold bool) Pattern {
	if fold {
		p = strings.ToLower(p)
	}
	return Pattern{p: p, fold: fold, wild: strings.ContainsAny(p, "*?")}
}

// Literal is a pattern that matches s alone, compared with case and without wildcards:
// the Gateway API's Exact header and query parameter matches.
func Literal(s string) Pattern { return Pattern{p: s} }

// Match reports whether s matches the pattern.
func (p Pattern) Match(s string) bool {
	if !p.wild {
		if p.fold {
			return strings.EqualFold(s, p.p)
		}
		return s == p.p
	}
	return wildMatch(p.p, s, p.fold)
}

// wildMatch matches s against pat, which has * and ? wildcards: the usual linear scan
// that, on a mismatch, moves the last * forward by one character. Patterns are short
// (the ALB allows 128 characters), and it allocates nothing.
func wildMatch(pat, s string, fold bool) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && pat[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pat) && (pat[pi] == '?' || pat[pi] == fold1(s[si], fold)):
			pi++
			si++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

func fold1(c byte, fold bool) byte {
	if fold && 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Any reports whether one of ps matches s.
func Any(ps []Pattern, s string) bool {
	for _, p := range ps {
		if p.Match(s) {
			return true
		}
	}
	return false
}

// LiteralPrefix is the part of a pattern before its first wildcard.
func LiteralPrefix(p string) string {
	if i := strings.IndexAny(p, "*?"); i >= 0 {
		return p[:i]
	}
	return p
}
