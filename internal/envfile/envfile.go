// Package envfile reads env files as `docker run --env-file` does.
package envfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Parse parses an env file exactly as `docker run --env-file` does:
// one KEY=VALUE per line, the value taken verbatim (no quotes, no
// expansion, trailing spaces kept); blank lines and lines starting with #
// ignored; whitespace before KEY trimmed; a UTF-8 BOM dropped; a line KEY
// alone takes KEY from lookup (liftoff's own environment) or is left out
// when unset. It returns KEY=VALUE lines in file order (a later duplicate
// wins when layered), also when some lines are wrong. Errors give every
// wrong line's number, never values.
//
// Where Docker would pass a NUL byte on and fail later, this rejects it.
func Parse(data []byte, lookup func(string) (string, bool)) ([]string, error) {
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	var out []string
	var errs []error
	n := 0
	for len(data) > 0 {
		n++
		var raw []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			raw, data = data, nil
		}
		raw = bytes.TrimSuffix(raw, []byte("\r")) // as bufio.ScanLines
		if !utf8.Valid(raw) {
			errs = append(errs, fmt.Errorf("line %d: not valid UTF-8", n))
			continue
		}
		line := strings.TrimLeftFunc(string(raw), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.IndexByte(line, 0) >= 0 {
			errs = append(errs, fmt.Errorf("line %d: contains a NUL byte, which no environment variable can hold", n))
			continue
		}
		key, value, hasValue := strings.Cut(line, "=")
		switch {
		case key == "":
			errs = append(errs, fmt.Errorf("line %d: no variable name before =", n))
			continue
		case strings.ContainsAny(key, " \t"):
			errs = append(errs, fmt.Errorf("line %d: variable name contains whitespace", n))
			continue
		}
		if hasValue {
			out = append(out, key+"="+value)
			continue
		}
		if lookup != nil {
			if v, ok := lookup(key); ok {
				out = append(out, key+"="+v)
			}
		}
	}
	if len(errs) > 0 {
		// One line per problem file, however many lines it has wrong.
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return out, errors.New(strings.Join(msgs, "; "))
	}
	return out, nil
}
