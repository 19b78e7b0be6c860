package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// duplicateKeyTokens is duplicateKey as it was first written, over
// json.Decoder's tokens: slow, but plainly what encoding/json sees. The
// scanner must agree with it on every valid JSON document.
func duplicateKeyTokens(obj []byte, where string) (string, string) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", ""
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", ""
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return "", ""
		}
		folded := foldKey(key)
		if seen[folded] {
			return where, truncate(strconv.Quote(key), 64)
		}
		seen[folded] = true
		if where == "body" && (folded == "push_data" || folded == "repository") {
			if w, k := duplicateKeyTokens(v, folded); k != "" {
				return w, k
			}
		}
	}
	return "", ""
}

func duplicateKeySeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	paths, _ := filepath.Glob(filepath.Join("testdata", "dockerhub_*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	var many strings.Builder
	many.WriteString(`{"push_data": {"tag": "a"`)
	for i := range 40 {
		fmt.Fprintf(&many, `, "k%d": %d`, i, i)
	}
	many.WriteString(`, "K7": 0}}`)
	manyTop := strings.TrimSuffix(strings.Replace(many.String(), `{"push_data": {`, `{"repository": {}, `, 1), "}")
	for _, s := range []string{
		`{}`, ` { } `, `[]`, `null`, `"x"`, `42`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":1,"A":2}`,
		`{"push_data": {"tag": "a", "TAG": "b"}}`,
		`{"push_data": {"tag": "a"}, "pu\u017fh_data": {}}`,
		`{"pu\u017fh_data": {"tag": "a", "t\u0061g": "b"}}`,
		`{"repository": {"repo_name": "x", "REPO_NAME": "y"}}`,
		`{"repository": {"\u212aey": 1, "key": 2}}`,
		`{"push_data": null, "repository": "x"}`,
		`{"x": "a \" } { [", "y": ["}", {"z": "\\"}], "x\\": 1, "X": 2}`,
		`{"a": {"b": 1, "b": 2}, "c": 3}`,
		`{"é": 1, "É": 2}`,
		"{\"\xff\": 1, \"\xfe\": 2}",
		`{"\ud800": 1, "\ufffd": 2}`,
		`{"a\/b": 1, "a/b": 2}`,
		"{\n\t\"push_data\" :\r\n{ \"tag\" : true , \"TAG\" : false } }",
		`{"push_data": {"tag": 1e+09, "tag2": -0.5, "tag": null}}`,
		`{"build_data": {"tag": 1, "tag": 2}}`,
		many.String(), manyTop,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// TestDuplicateKeyScanner: the scanner finds what json.Decoder's tokens
// find.
func TestDuplicateKeyScanner(t *testing.T) {
	for _, b := range duplicateKeySeeds(t) {
		if !json.Valid(b) {
			t.Fatalf("seed is not JSON: %s", b)
		}
		w, k := duplicateKey(b, "body")
		ww, wk := duplicateKeyTokens(b, "body")
		if w != ww || k != wk {
			t.Errorf("%.120s: %q %q, want %q %q", b, w, k, ww, wk)
		}
	}
}

func FuzzDuplicateKey(f *testing.F) {
	for _, b := range duplicateKeySeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, k := duplicateKey(b, "body") // must not panic on anything
		if !json.Valid(b) {
			return
		}
		if ww, wk := duplicateKeyTokens(b, "body"); w != ww || k != wk {
			t.Fatalf("%q %q, want %q %q", w, k, ww, wk)
		}
	})
}

func TestDuplicateKeyAllocs(t *testing.T) {
	body := []byte(fixture(t, "dockerhub_push.json"))
	if n := testing.AllocsPerRun(100, func() { duplicateKey(body, "body") }); n != 0 {
		t.Errorf("%v allocations, want none", n)
	}
}
