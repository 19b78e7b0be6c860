package webhooks

import (
	"net/http"
	"unicode/utf8"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// The header values of a 202, shared by every answer: net/http only reads
// them, and Header.Set or Add would replace them rather than write into
// them.
var (
	headerJSON    = []string{"application/json"}
	headerNosniff = []string{"nosniff"}
)

// writeAnswer answers status (202, or 200 for a ping or a redelivery)
// {"delivery", "accepted", "ignored"}, as
// httperr.JSON would (TestAnswerJSON), without its reflection.
func writeAnswer(w http.ResponseWriter, status int, d *delivery) {
	h := w.Header()
	h["Content-Type"] = headerJSON
	h["X-Content-Type-Options"] = headerNosniff
	w.WriteHeader(status)
	w.Write(appendAnswer(make([]byte, 0, 256), d.id, d.accepted, d.ignored))
}

// appendAnswer appends the body of a 202, newline included, to b: what
// json.Marshal makes of apiv1.HookAnswer{id, accepted, ignored}, with []
// for nil.
func appendAnswer(b []byte, id string, accepted []string, ignored []deployments.Ignored) []byte {
	b = append(b, `{"delivery":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"accepted":[`...)
	for i, a := range accepted {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a)
	}
	b = append(b, `],"ignored":[`...)
	for i, ig := range ignored {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if ig.Deployment != "" {
			b = append(b, `"deployment":`...)
			b = appendJSONString(b, ig.Deployment)
			b = append(b, ',')
		}
		if ig.Tag != "" {
			b = append(b, `"tag":`...)
			b = appendJSONString(b, ig.Tag)
			b = append(b, ',')
		}
		b = append(b, `"reason":`...)
		b = appendJSONString(b, ig.Reason)
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it by default: control characters, quotes, backslashes, <, >
// and &, U+2028 and U+2029; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
