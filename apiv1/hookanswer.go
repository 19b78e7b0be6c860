package apiv1

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends what json.Marshal makes of a, and a newline, without
// reflection: the hook path writes it for every push. TestAnswerJSON and
// FuzzAnswerJSON hold it to json.Marshal byte for byte.
func (a HookAnswer) AppendJSON(b []byte) []byte {
	b = append(b, `{"delivery":`...)
	b = appendJSONString(b, a.Delivery)
	b = append(b, `,"accepted":`...)
	b = strconv.AppendInt(b, int64(a.Accepted), 10)
	b = append(b, `,"pending":`...)
	b = strconv.AppendInt(b, int64(a.Pending), 10)
	b = append(b, `,"held":`...)
	b = strconv.AppendInt(b, int64(a.Held), 10)
	b = append(b, `,"ignored":`...)
	b = strconv.AppendInt(b, int64(a.Ignored), 10)
	if a.Redelivery {
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
