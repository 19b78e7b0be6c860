package payload

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrSignature marks a delivery whose signature is missing, malformed or
// wrong: the sender should be answered 401 and nothing read. Its messages
// never hold the header or the secret.
var ErrSignature = errors.New("bad signature")

// VerifySignature checks header, "sha256=<hex HMAC-SHA256 of body>" as
// GitHub sends X-Hub-Signature-256 and liftoff's generic senders
// X-Liftoff-Signature-256, against body and secret, in constant time. An
// empty secret verifies nothing: anyone can compute its HMAC.
func VerifySignature(secret []byte, header string, body []byte) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: no secret configured", ErrSignature)
	}
	if header == "" {
		return fmt.Errorf("%w: missing", ErrSignature)
	}
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSum) != hex.EncodedLen(sha256.Size) {
		return fmt.Errorf("%w: want sha256=<64 hex digits>", ErrSignature)
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return fmt.Errorf("%w: want sha256=<64 hex digits>", ErrSignature)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return fmt.Errorf("%w: does not match the body", ErrSignature)
	}
	return nil
}
