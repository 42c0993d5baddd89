package apns

import (
	"unicode"
	"unicode/utf8"
)

// The APNs size limit is on the encoded payload, so the alert body is cut by
// what its runes cost once encoded. This file is the one JSON string encoder
// used for the payload's text, so that the cost it reports and the bytes it
// writes cannot disagree. It escapes only what JSON requires (not <, >, &
// as encoding/json does by default): every byte counts against the limit.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, quotes included. Invalid UTF-8
// becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendStringBody(dst, s)
	return append(dst, '"')
}

// appendStringBody appends s JSON-escaped, without quotes.
func appendStringBody(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	return append(dst, s[start:]...)
}

// encodedLen reports the size of r, decoded from w bytes of a string, as
// appendStringBody writes it.
func encodedLen(r rune, w int) int {
	switch {
	case r == utf8.RuneError && w == 1: // invalid UTF-8
		return len(`\ufffd`)
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20:
		return len(`\u0000`)
	}
	return w
}

// cuts lists the places where s may be cut whose prefix encodes to between
// lo and hi bytes, as byte offsets into s with the encoded size of s up to
// each. The first place is the last one below lo (0, the empty prefix, when
// there is none); the last is len(s) when all of s encodes within hi. A body
// is cut to fit a payload, and the badge moves the fit by a few bytes only,
// so the scan stops at hi however long the message is, and keeps only the
// few places in [lo, hi].
//
// Places fall between user-perceived characters: never inside a rune, and
// not before a combining mark, variation selector, emoji modifier or tag,
// nor on either side of a zero-width joiner, nor inside a flag's pair of
// regional indicators, nor between CR and LF. That approximates Unicode's
// extended grapheme clusters (UAX #29) for the cases a chat message meets,
// without a segmentation table.
func cuts(s string, lo, hi int) (offsets, encoded []int) {
	offsets, encoded = []int{0}, []int{0}
	add := func(i, enc int) {
		if enc < lo {
			offsets[0], encoded[0] = i, enc
			return
		}
		offsets = append(offsets, i)
		encoded = append(encoded, enc)
	}
	var prev rune = -1
	regional := 0 // regional indicators in a row before i
	enc := 0
	for i := 0; i < len(s); {
		if enc > hi {
			return offsets, encoded
		}
		if c := s[i]; c < utf8.RuneSelf {
			// The common case, ASCII, takes the short way.
			if i > 0 && prev != zwj && (c != '\n' || prev != '\r') {
				add(i, enc)
			}
			enc += encodedLen(rune(c), 1)
			i++
			prev, regional = rune(c), 0
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if i > 0 && breakBetween(prev, r, regional) {
			add(i, enc)
		}
		enc += encodedLen(r, w)
		i += w
		if isRegional(r) {
			regional++
		} else {
			regional = 0
		}
		prev = r
	}
	if len(s) > 0 && enc <= hi {
		add(len(s), enc)
	}
	return offsets, encoded
}

// breakBetween reports whether a character boundary lies between prev and
// r; regional is how many regional indicators end just before r.
func breakBetween(prev, r rune, regional int) bool {
	switch {
	case prev == '\r' && r == '\n':
		return false
	case prev == zwj || r == zwj:
		return false
	case isMark(r):
		return false
	case r >= 0x1F3FB && r <= 0x1F3FF: // emoji skin-tone modifiers
		return false
	case r >= 0xE0020 && r <= 0xE007F: // tags (subdivision flags)
		return false
	case isRegional(r) && regional%2 == 1:
		return false
	}
	return true
}

const zwj = 0x200D

// isMark reports whether r is a combining mark, skipping the table search
// for the scripts chat text is mostly made of, which have none.
func isMark(r rune) bool {
	switch {
	case r < 0x300, // Latin, before the combining diacriticals
		r >= 0x3400 && r <= 0x9FFF, // CJK ideographs
		r >= 0xAC00 && r <= 0xD7A3: // Hangul syllables
		return false
	}
	return unicode.Is(unicode.M, r)
}

func isRegional(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }
