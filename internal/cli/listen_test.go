package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestServeListenFlag: serve --listen and $LIFTOFF_LISTEN take [host]:port
// and say so when given anything else (exit 2, nothing started); --help
// tells the default and the variable.
func TestServeListenFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
	}{
		{[]string{"serve", "--config", "/nonexistent.yaml", "--listen", "8080"}, ""},
		{[]string{"serve", "--config", "/nonexistent.yaml"}, "localhost"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errOut, func(k string) (string, bool) {
			if k == "LIFTOFF_LISTEN" && tc.env != "" {
				return tc.env, true
			}
			return "", false
		})
		if code != ExitUsage || !strings.Contains(errOut.String(), "want [host]:port") {
			t.Errorf("%v with LIFTOFF_LISTEN=%q: exit %d: %s", tc.args, tc.env, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	run(context.Background(), []string{"serve", "--help"}, &out, &errOut, func(string) (string, bool) { return "", false })
	if help := out.String() + errOut.String(); !strings.Contains(help, "--listen") || !strings.Contains(help, "127.0.0.1:8080") ||
		!strings.Contains(help, "LIFTOFF_LISTEN") {
		t.Errorf("serve --help:\n%s", help)
	}
}
