// Package fielderr reports every invalid field of a request at once, in the
// shape the HTTP API returns: {"field": ..., "rule": ...}.
package fielderr

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error is one field that failed validation and the rule it broke. Field
// is the JSON path of the offending value ("recipients[2]",
// "push.ios.badge"), or "" when the error concerns the document as a
// whole.
type Error struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

func (e Error) Error() string {
	if e.Field == "" {
		return e.Rule
	}
	return e.Field + ": " + e.Rule
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

// RuleText is the rule an id breaks when Text refuses it.
const RuleText = "printable UTF-8 only, no control characters, no invisible or format characters"

// Text reports whether s is valid UTF-8 of printable characters only
// (unicode.IsPrint: no controls, no invisible or format characters, no
// space but U+0020). Every id pushd keeps (jobs', devices', mutes') is
// held to it, so that an id a device is registered under can be named in
// a job, reads the same in logs, and can be stored (PostgreSQL refuses a
// NUL in text).
func Text(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// TextRule is the rule s breaks as an id of at most maxLen bytes, or ""
// when it keeps them all. An empty s breaks "required" only if required.
func TextRule(s string, maxLen int, required bool) string {
	switch {
	case s == "":
		if required {
			return "required"
		}
	case len(s) > maxLen:
		return fmt.Sprintf("at most %d bytes", maxLen)
	case !Text(s):
		return RuleText
	}
	return ""
}

// CheckText adds field's error when s breaks TextRule.
func (l *List) CheckText(field, s string, maxLen int, required bool) {
	if rule := TextRule(s, maxLen, required); rule != "" {
		l.Add(field, rule)
	}
}
