package webhooks

import (
	"net/http"
	"strconv"
	"unicode/utf8"
)

// The header values of a 202, shared by every answer: net/http only reads
// them, and Header.Set or Add would replace them rather than write into
// them.
var (
	headerJSON    = []string{"application/json"}
	headerNosniff = []string{"nosniff"}
)

// writeAnswer answers status (202, or 200 for a ping or a redelivery)
// {"delivery", "accepted", "pending", "held", "ignored"[, "redelivery"]}: the delivery's
// id and counts, as httperr.JSON would (TestAnswerJSON), without its
// reflection. The answer names no deployment, tag rule or reason: whoever
// holds the hook token learns nothing of the config from it; the reasons
// are in the log, the history and the API.
func writeAnswer(w http.ResponseWriter, status int, d *delivery) {
	h := w.Header()
	h["Content-Type"] = headerJSON
	h["X-Content-Type-Options"] = headerNosniff
	w.WriteHeader(status)
	w.Write(appendAnswer(make([]byte, 0, 128), d.id, d.counts()))
}

// counts is what a delivery's answer tells.
type counts struct {
	accepted, pending, held, ignored int
	redelivery                       bool
}

// counts of d: the deployments queued, awaiting approval and held, and
// every other deployment or tag not deployed.
func (d *delivery) counts() counts {
	return counts{accepted: len(d.accepted), pending: d.pending, held: d.held,
		ignored: len(d.ignored) - d.pending - d.held, redelivery: d.redelivery}
}

// appendAnswer appends the body of a 202, newline included, to b: what
// json.Marshal makes of apiv1.HookAnswer.
func appendAnswer(b []byte, id string, c counts) []byte {
	b = append(b, `{"delivery":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"accepted":`...)
	b = strconv.AppendInt(b, int64(c.accepted), 10)
	b = append(b, `,"pending":`...)
	b = strconv.AppendInt(b, int64(c.pending), 10)
	b = append(b, `,"held":`...)
	b = strconv.AppendInt(b, int64(c.held), 10)
	b = append(b, `,"ignored":`...)
	b = strconv.AppendInt(b, int64(c.ignored), 10)
	if c.redelivery {
		b = append(b, `,"redelivery":true`...)
	}
	return append(b, "}\n"...)
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
