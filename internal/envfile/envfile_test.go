package envfile

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	env := lookupMap(map[string]string{"PASSED_THROUGH": "from-liftoff", "HOME": "/home/liftoff"})
	data, err := os.ReadFile("testdata/base.env")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data, env)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"SHARED=from-base-env", // leading whitespace trimmed
		"FILE_ONLY=FILESECRET-base-env-value",
		`QUOTED="kept as is"`,         // no quote processing
		"EXPANDED=$HOME ${HOME}",      // no expansion
		"TRAILING=space ",             // trailing whitespace kept
		"PASSED_THROUGH=from-liftoff", // KEY alone: from liftoff's environment
	} // NOT_IN_ENVIRONMENT: omitted
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	tests := []struct {
		name, in string
		want     []string
		err      string
	}{
		{"empty", "", nil, ""},
		{"crlf", "A=1\r\nB=2\r\n", []string{"A=1", "B=2"}, ""},
		{"no final newline", "A=1", []string{"A=1"}, ""},
		{"bom", "\xEF\xBB\xBFA=1\n", []string{"A=1"}, ""},
		{"equals in value", "A=b=c\n", []string{"A=b=c"}, ""},
		{"empty value", "A=\n", []string{"A="}, ""},
		{"indented comment", "  # c\n\t#x=y\n", nil, ""},
		{"hash mid-line", "A=b # not a comment\n", []string{"A=b # not a comment"}, ""},
		{"docker keeps odd keys", "a.b=1\n", []string{"a.b=1"}, ""},
		{"space in key", "ok=1\nBAD KEY=FILESECRET\n", []string{"ok=1"}, "line 2: variable name contains whitespace"},
		{"space before =", "KEY =FILESECRET\n", nil, "line 1: variable name contains whitespace"},
		{"no name", "\n\n=FILESECRET\n", nil, "line 3: no variable name before ="},
		{"nul", "A=FILESECRET\x00\n", nil, "line 1: contains a NUL byte, which no environment variable can hold"},
		{"bad utf8", "A=ok\nB=FILESECRET\xff\n", []string{"A=ok"}, "line 2: not valid UTF-8"},
		{"several", "A B=1\nC=2\n=3\n", []string{"C=2"}, "line 1: variable name contains whitespace; line 3: no variable name before ="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in), env)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || err.Error() != tt.err) {
				t.Fatalf("error = %v, want %q", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "FILESECRET") {
				t.Errorf("value leaked: %v", err)
			}
		})
	}
}

// FuzzEnvFile: never panics; every line it returns is KEY=VALUE with a
// key free of whitespace and '=', valid UTF-8 without NUL; errors never
// contain what follows '=' on a line.
func FuzzEnvFile(f *testing.F) {
	for _, s := range []string{"A=1\n", "# c\n\nB=2\r\n", "  C\n", "BAD KEY=x\n", "=x\n", "\xEF\xBB\xBFD=\"q\"\n", "E=a=b", "F=\x00", "G=\xff\n", "\t H=1 \n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := Parse(data, lookupMap(map[string]string{"C": "from-env"}))
		for _, l := range lines {
			k, v, ok := strings.Cut(l, "=")
			if !ok || k == "" || strings.ContainsAny(k, " \t") || !utf8.ValidString(l) || strings.ContainsRune(v, 0) {
				t.Fatalf("bad line %q from %q", l, data)
			}
		}
		if err != nil {
			for _, e := range strings.Split(err.Error(), "; ") {
				if !strings.HasPrefix(e, "line ") {
					t.Fatalf("error part %q does not name a line", e)
				}
			}
			// Values (after '=') never show; a marker in a value must not leak.
			marked := []byte(strings.ReplaceAll(string(data), "=", "=FILESECRET"))
			if _, err := Parse(marked, nil); err != nil && strings.Contains(err.Error(), "FILESECRET") {
				t.Fatalf("value leaked: %v", err)
			}
		}
	})
}

// lookupMap looks names up in m, as liftoff looks them up in its environment.
func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}
