package payload

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func sign(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestVerifySignature(t *testing.T) {
	// GitHub's documented test vector.
	const secret, body = "It's a Secret to Everybody", "Hello, World!"
	const good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if err := VerifySignature([]byte(secret), good, []byte(body)); err != nil {
		t.Fatalf("GitHub's test vector: %v", err)
	}
	if sign(secret, body) != good {
		t.Fatal("sign disagrees with GitHub's test vector")
	}
	upper := "sha256=" + strings.ToUpper(good[7:])
	for _, tc := range []struct{ name, secret, header, body, err string }{
		{"upper-case hex", secret, upper, body, ""},
		{"another body", secret, good, body + " ", "does not match the body"},
		{"another secret", "It's a Secret to Nobody", good, body, "does not match the body"},
		{"missing", secret, "", body, "missing"},
		{"sha1", secret, "sha1=" + strings.Repeat("0", 40), body, "want sha256=<64 hex digits>"},
		{"no prefix", secret, good[7:], body, "want sha256="},
		{"prefix in upper case", secret, "SHA256=" + good[7:], body, "want sha256="},
		{"odd hex", secret, good[:len(good)-1], body, "want sha256="},
		{"not hex", secret, good[:len(good)-1] + "g", body, "want sha256="},
		{"empty after the prefix", secret, "sha256=", body, "want sha256="},
		{"twice", secret, good + "," + good, body, "want sha256="},
		{"a space in front", secret, " " + good, body, "want sha256="},
		{"no secret", "", sign("", body), body, "no secret configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature([]byte(tc.secret), tc.header, []byte(tc.body))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v: want ErrSignature and %q", err, tc.err)
			}
			msg := err.Error()
			if tc.secret != "" && strings.Contains(msg, tc.secret) || len(tc.header) > 8 && strings.Contains(msg, tc.header[7:]) ||
				strings.Contains(msg, good[7:20]) {
				t.Fatalf("error %q shows the secret or the header", msg)
			}
		})
	}
}
