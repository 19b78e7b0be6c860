package apiv1

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// TestAnswerJSON: AppendJSON writes what json.Marshal makes of a HookAnswer,
// byte for byte, whatever the id holds.
func TestAnswerJSON(t *testing.T) {
	tricky := []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\rcr\b\f",
		"\x00\x01\x1f\x7f", "é ü 日本 🚀", "\u2028\u2029", "bad \xff\xfe utf-8 \xc3", "\xed\xa0\x80 surrogate", "\ufffd"}
	for i, s := range tricky {
		assertAnswerJSON(t, HookAnswer{Delivery: s, Accepted: i, Pending: 1, Held: 2, Ignored: 1000})
	}
	assertAnswerJSON(t, HookAnswer{Delivery: "id"})
	assertAnswerJSON(t, HookAnswer{Delivery: "id", Ignored: 1, Redelivery: true})
}

func FuzzAnswerJSON(f *testing.F) {
	f.Add("0123456789abcdef", 1, 0)
	f.Add("\xff\u2028", 0, 3)
	f.Fuzz(func(t *testing.T, id string, accepted, ignored int) {
		assertAnswerJSON(t, HookAnswer{Delivery: id, Accepted: accepted, Ignored: ignored})
	})
}

func assertAnswerJSON(t *testing.T, a HookAnswer) {
	t.Helper()
	want, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if got := a.AppendJSON(nil); string(got) != string(want) {
		t.Errorf("AppendJSON:\n%q\nwant (json.Marshal)\n%q", got, want)
	}
	if !utf8.Valid(want) {
		t.Errorf("json.Marshal wrote invalid UTF-8: %q", want)
	}
}
