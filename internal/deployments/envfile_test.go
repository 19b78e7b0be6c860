package deployments

import (
	"strings"
	"testing"
)

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"nul": "a\x00b", "utf8": "\xff\xfe", "big": strings.Repeat("x", maxFile+1)} {
		write(t, dir, name, content)
		if _, err := readSecretFile(dir + "/" + name); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	write(t, dir, "ok", "s3cret\r\n\n")
	if got, err := readSecretFile(dir + "/ok"); got != "s3cret" || err != nil {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := readSecretFile(dir); err == nil {
		t.Error("a directory: no error")
	}
}
