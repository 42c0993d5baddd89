// Package fielderr reports every invalid field of a request at once, in the
// shape the HTTP API returns: {"field": ..., "rule": ...}.
package fielderr

import (
	"strings"
	"unicode/utf8"
)

// Error is one field that failed validation and the rule it broke.
type Error struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

// List is every invalid field of one thing (an installation, a mute).
type List struct {
	// What names the thing, for Error: "invalid <What>: ...".
	What   string  `json:"-"`
	Fields []Error `json:"fields"`
}

// Add records that field broke rule.
func (l *List) Add(field, rule string) { l.Fields = append(l.Fields, Error{Field: field, Rule: rule}) }

// Err returns l, or nil when no field was invalid.
func (l *List) Err() error {
	if len(l.Fields) == 0 {
		return nil
	}
	return l
}

func (l *List) Error() string {
	parts := make([]string, len(l.Fields))
	for i, f := range l.Fields {
		parts[i] = f.Field + ": " + f.Rule
	}
	return "invalid " + l.What + ": " + strings.Join(parts, "; ")
}

// Text reports whether s is valid UTF-8 without control characters: what
// an id must be to be stored (PostgreSQL refuses a NUL) and to read the
// same in logs.
func Text(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)
	})
}
