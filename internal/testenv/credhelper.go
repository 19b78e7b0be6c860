package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// CredHelper is a fake Docker credential helper, docker-credential-<name>:
// a shell script in a temporary directory put first on PATH, which answers
// `get` with Username and the secret last given to SetSecret, and records
// each server it is asked for. PATH is set with t.Setenv, so a test that
// makes one cannot be parallel.
type CredHelper struct {
	t   testing.TB
	dir string
}

// credHelperScript reads the server from stdin, records it, then fails,
// says "not found" or answers, as the files of its directory say. Failing,
// it prints the secret on stdout: errors must never show it.
const credHelperScript = `#!/bin/sh
d=$(dirname "$0")
[ "$1" = get ] || exit 2
read -r server
printf '%s\n' "$server" >> "$d/calls"
if [ -f "$d/fail" ]; then
	cat "$d/fail" >&2
	printf 'secret: %s\n' "$(cat "$d/secret")"
	exit 3
fi
if [ -f "$d/notfound" ]; then
	echo "credentials not found in native keychain"
	exit 1
fi
printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\n' "$server" "$(cat "$d/username")" "$(cat "$d/secret")"
`

// NewCredHelper writes docker-credential-<name>, answering username and
// secret, and puts its directory first on PATH.
func NewCredHelper(t testing.TB, name, username, secret string) *CredHelper {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake credential helper is a shell script")
	}
	h := &CredHelper{t: t, dir: t.TempDir()}
	h.write("docker-credential-"+name, credHelperScript, 0o755)
	h.write("username", username, 0o600)
	h.SetSecret(secret)
	t.Setenv("PATH", h.dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return h
}

// SetSecret makes the helper answer secret from now on, as after the
// registry's token expired and a new one was issued.
func (h *CredHelper) SetSecret(secret string) { h.write("secret", secret, 0o600) }

// Fail makes the helper fail (exit status 3) with stderr on its stderr;
// "" makes it answer again.
func (h *CredHelper) Fail(stderr string) { h.toggle("fail", stderr) }

// NotFound makes the helper say it has no credentials for any server, as
// docker-credential-helpers' helpers do; false makes it answer again.
func (h *CredHelper) NotFound(on bool) {
	s := ""
	if on {
		s = "yes"
	}
	h.toggle("notfound", s)
}

// Calls returns the servers the helper was asked for, in order.
func (h *CredHelper) Calls() []string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, "calls"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func (h *CredHelper) toggle(file, content string) {
	h.t.Helper()
	if content == "" {
		if err := os.Remove(filepath.Join(h.dir, file)); err != nil && !os.IsNotExist(err) {
			h.t.Fatal(err)
		}
		return
	}
	h.write(file, content, 0o600)
}

func (h *CredHelper) write(file, content string, mode os.FileMode) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, file), []byte(content), mode); err != nil {
		h.t.Fatal(err)
	}
}
