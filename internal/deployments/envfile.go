package deployments

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/liftoff-deploy/liftoff/internal/envfile"
)

// maxFile bounds what liftoff reads of an env, secret or password file:
// they are small, and a mistaken path (/dev/zero, a log) must not eat memory.
const maxFile = 1 << 20

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
	lines, err := envfile.Parse(data, c.lookup)
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
