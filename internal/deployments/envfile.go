package deployments

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxFile bounds what liftoff reads of an env, secret or password file:
// they are small, and a mistaken path (/dev/zero, a log) must not eat memory.
const maxFile = 1 << 20

// ParseEnvFile parses an env file exactly as `docker run --env-file` does:
// one KEY=VALUE per line, the value taken verbatim (no quotes, no
// expansion, trailing spaces kept); blank lines and lines starting with #
// ignored; whitespace before KEY trimmed; a UTF-8 BOM dropped; a line KEY
// alone takes KEY from lookup (liftoff's own environment) or is left out
// when unset. It returns KEY=VALUE lines in file order (a later duplicate
// wins when layered), also when some lines are wrong. Errors give every
// wrong line's number, never values.
//
// Where Docker would pass a NUL byte on and fail later, this rejects it.
func ParseEnvFile(data []byte, lookup func(string) (string, bool)) ([]string, error) {
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

// readFile reads at most maxFile bytes of a file liftoff itself uses.
// Only regular files: opening a FIFO would block a reload forever, and a
// device is never what was meant.
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFile)
	}
	return data, nil
}

// readEnvFile reads and parses one env file; errors name the file.
func (c *Config) readEnvFile(path string) ([]string, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	lines, err := ParseEnvFile(data, c.lookup)
	if err != nil {
		return lines, fmt.Errorf("%s: %w", path, err)
	}
	return lines, nil
}

// readSecretFile returns a secret or password file's content without its
// trailing newline (editors and `echo` add one; no secret means it).
func readSecretFile(path string) (string, error) {
	data, err := readFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(data), "\r\n")
	switch {
	case !utf8.ValidString(s):
		// The Engine API is JSON: invalid UTF-8 would silently become U+FFFD.
		return "", fmt.Errorf("%s: not valid UTF-8", path)
	case strings.IndexByte(s, 0) >= 0:
		return "", fmt.Errorf("%s: contains a NUL byte, which no environment variable can hold", path)
	}
	return s, nil
}
