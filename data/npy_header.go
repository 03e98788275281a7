package data

import (
	"fmt"
	"strconv"
	"strings"
)

// parseNPYHeader parses the Python dict literal of a .npy header, such as
// "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }".
func parseNPYHeader(h string) (descr string, fortran bool, shape []int, err error) {
	p := &pyParser{s: strings.TrimRight(h, " \t\n\x00")}
	bad := func(what string) error {
		return fmt.Errorf("malformed npy header %q: %s", abbreviate(strings.TrimRight(h, " \n"), 200), what)
	}
	if !p.eat('{') {
		return "", false, nil, bad("does not start with '{'")
	}
	seen := map[string]bool{}
	for {
		if p.eat('}') {
			break
		}
		key, ok := p.str()
		if !ok {
			return "", false, nil, bad("expected a quoted key")
		}
		if seen[key] {
			return "", false, nil, bad("duplicate key " + key)
		}
		seen[key] = true
		if !p.eat(':') {
			return "", false, nil, bad("expected ':' after key " + key)
		}
		switch key {
		case "descr":
			if p.peek() == '[' {
				return "", false, nil, fmt.Errorf("unsupported npy dtype: structured arrays are not supported")
			}
			if descr, ok = p.str(); !ok {
				return "", false, nil, bad("descr is not a string")
			}
		case "fortran_order":
			switch {
			case p.word("True"):
				fortran = true
			case p.word("False"):
				fortran = false
			default:
				return "", false, nil, bad("fortran_order is not True or False")
			}
		case "shape":
			if shape, ok = p.tuple(); !ok {
				return "", false, nil, bad("shape is not a tuple of non-negative integers")
			}
		default:
			return "", false, nil, bad("unknown key " + key)
		}
		if !p.eat(',') {
			if !p.eat('}') {
				return "", false, nil, bad("expected ',' or '}'")
			}
			break
		}
	}
	if p.skip(); p.i != len(p.s) {
		return "", false, nil, bad("text after the closing '}'")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return "", false, nil, bad("missing key " + k)
		}
	}
	return descr, fortran, shape, nil
}

// pyParser scans the small subset of Python literals used in npy headers.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *pyParser) peek() byte {
	p.skip()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyParser) eat(c byte) bool {
	if p.peek() == c && c != 0 {
		p.i++
		return true
	}
	return false
}

func (p *pyParser) word(w string) bool {
	p.skip()
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

// str scans a quoted string without escapes.
func (p *pyParser) str() (string, bool) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", false
	}
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", false
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, true
}

// tuple scans a tuple of non-negative integers, such as "()", "(5,)" or
// "(3, 4)"; Python 2's "L" suffix is accepted.
func (p *pyParser) tuple() ([]int, bool) {
	if !p.eat('(') {
		return nil, false
	}
	dims := []int{}
	for {
		if p.eat(')') {
			return dims, true
		}
		p.skip()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j == p.i || j-p.i > 19 {
			return nil, false
		}
		v, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil {
			return nil, false
		}
		p.i = j
		if p.i < len(p.s) && p.s[p.i] == 'L' {
			p.i++
		}
		if len(dims) >= 64 {
			return nil, false
		}
		dims = append(dims, int(v))
		if !p.eat(',') {
			if !p.eat(')') {
				return nil, false
			}
			return dims, true
		}
	}
}

// abbreviate shortens s to at most n bytes for error messages.
func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
