// Package secret keeps passwords, tokens and keys out of logs and dumps. A
// [Secret] prints, logs and marshals as "[redacted]"; only [Secret.Reveal]
// gives its value, and is meant to be called where the value is used: a
// Redis dial, a TLS key's decryption, a token comparison.
//
// fmt, log/slog, encoding/json and YAML encoders find a Secret's methods
// wherever it sits in an exported field, a slice, a map or behind a
// pointer. fmt cannot call methods on an unexported struct field, though,
// and prints its underlying string: keep secrets in exported fields.
package secret

import (
	"encoding/json"
	"log/slog"
	"strconv"
)

// Secret is a string that shows [Redacted] wherever it is printed. The
// empty Secret shows as empty, so that a password that is missing reads as
// missing rather than as set.
//
// Decoding (JSON, YAML, a config file) fills a Secret like any string;
// encoding writes it redacted, so a Secret does not survive a round trip,
// by design.
type Secret string

// Redacted is what a non-empty Secret shows instead of its value.
const Redacted = "[redacted]"

// Reveal returns the secret's value. Call it only where the value is used,
// never to print it.
func (s Secret) Reveal() string { return string(s) }

// String returns Redacted, or "" for the empty Secret. fmt's %v, %+v, %s
// and %q call it.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString is String as Go syntax, for fmt's %#v.
func (s Secret) GoString() string { return "secret.Secret(" + strconv.Quote(s.String()) + ")" }

// LogValue is String, for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON encodes String as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText is String, for YAML, XML and the other encoders that take
// encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
