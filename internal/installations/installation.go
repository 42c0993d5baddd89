// Package installations is pushd's device registry: which devices each
// client has, the provider token of each, and whether the provider still
// accepts it. It also keeps the per-message delivery record that stops a
// retry from pushing a device twice.
package installations

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pushd/pushd/internal/fielderr"
)

// Provider is the push service a device is reached through.
type Provider string

const (
	APNs Provider = "apns"
	FCM  Provider = "fcm"
)

// Platform is what an installation runs on, which decides the shape of its FCM message.
type Platform string

const (
	PlatformIOS     Platform = "ios"
	PlatformAndroid Platform = "android"
	PlatformWeb     Platform = "web"
)

// DefaultPlatform is the platform an installation of provider p is stored
// with when it names none: APNs reaches only Apple devices, and FCM
// registrations predate the field and came from Android apps. Empty for an
// unknown provider.
func DefaultPlatform(p Provider) Platform {
	switch p {
	case APNs:
		return PlatformIOS
	case FCM:
		return PlatformAndroid
	}
	return ""
}

// APNs environments: which gateway a device's token belongs to.
const (
	Production  = "production"
	Development = "development"
)

// Installation is one device of one client.
type Installation struct {
	ID       string   `json:"installation_id"`
	AppID    string   `json:"app_id"`
	ClientID string   `json:"client_id"`
	Provider Provider `json:"provider"`
	// Platform is empty only before Upsert, which stores the provider's
	// default (see DefaultPlatform); every stored installation has one.
	Platform Platform `json:"platform"`
	Token    string   `json:"token"`
	// APNsEnv is production or development for APNs devices, from the
	// app's aps-environment; empty means production until a push proves
	// otherwise. Always empty for FCM.
	APNsEnv string `json:"apns_env"`
	// APNsTopic overrides the app's topic, for apps with several bundle
	// ids.
	APNsTopic string `json:"apns_topic"`
	Locale    string `json:"locale"`
	Timezone  string `json:"timezone"`
	// Badge is the number on the app icon as pushd last set it. The
	// registry owns it: Upsert ignores the caller's value.
	Badge         int       `json:"badge"`
	Valid         bool      `json:"valid"`
	InvalidReason string    `json:"invalid_reason"`
	InvalidAt     time.Time `json:"invalid_at,omitzero"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
	UpdatedAt     time.Time `json:"updated_at,omitzero"`
}

// Limits on what a registration may hold.
const (
	MaxIDLen       = 128
	MaxAppIDLen    = 128
	MaxClientIDLen = 256
	MinAPNsToken   = 64
	MaxAPNsToken   = 200
	MaxFCMToken    = 4096
	MaxTopicLen    = 255
	MaxLocaleLen   = 35 // the longest BCP 47 tag in practical use
	MaxTimezoneLen = 64
)

// FieldError is one field that failed validation and the rule it broke.
type FieldError = fielderr.Error

// FieldErrors lists every invalid field of an installation.
type FieldErrors = fielderr.List

// Validate checks every field and reports all that are wrong, as a
// *FieldErrors. An APNs token is accepted in either case of hex.
func (in Installation) Validate() error {
	fe := FieldErrors{What: "installation"}
	switch {
	case in.ID == "":
		fe.Add("installation_id", "required")
	case len(in.ID) > MaxIDLen || !isIDChars(in.ID):
		fe.Add("installation_id", fmt.Sprintf("at most %d characters from A-Z a-z 0-9 _ . : -", MaxIDLen))
	}
	fe.CheckText("app_id", in.AppID, MaxAppIDLen, true)
	fe.CheckText("client_id", in.ClientID, MaxClientIDLen, true)

	switch in.Provider {
	case APNs:
		if in.Token == "" {
			fe.Add("token", "required")
		} else if !isAPNsToken(in.Token) {
			fe.Add("token", fmt.Sprintf("an APNs token is an even number of hex digits, %d to %d", MinAPNsToken, MaxAPNsToken))
		}
	case FCM:
		if in.Token == "" {
			fe.Add("token", "required")
		} else if !isFCMToken(in.Token) {
			fe.Add("token", fmt.Sprintf("an FCM token is printable ASCII without spaces, at most %d characters", MaxFCMToken))
		}
	case "":
		fe.Add("provider", "required")
		if in.Token == "" {
			fe.Add("token", "required")
		}
	default:
		fe.Add("provider", `one of "apns", "fcm"`)
		if in.Token == "" {
			fe.Add("token", "required")
		}
	}

	switch {
	case in.Platform == "":
	case in.Platform != PlatformIOS && in.Platform != PlatformAndroid && in.Platform != PlatformWeb:
		fe.Add("platform", `one of "ios", "android", "web", or empty`)
	case in.Provider == APNs && in.Platform != PlatformIOS:
		fe.Add("platform", `"ios" or empty for provider apns`)
	}

	switch {
	case in.APNsEnv != "" && in.APNsEnv != Production && in.APNsEnv != Development:
		fe.Add("apns_env", `one of "production", "development", or empty`)
	case in.APNsEnv != "" && in.Provider != APNs:
		fe.Add("apns_env", "only for provider apns")
	}
	switch {
	case in.APNsTopic != "" && in.Provider != APNs:
		fe.Add("apns_topic", "only for provider apns")
	case len(in.APNsTopic) > MaxTopicLen || !isPrintableASCII(in.APNsTopic):
		fe.Add("apns_topic", fmt.Sprintf("printable ASCII without spaces, at most %d characters", MaxTopicLen))
	}

	if len(in.Locale) > MaxLocaleLen || !isLocaleChars(in.Locale) {
		fe.Add("locale", fmt.Sprintf("a language tag such as zh-Hans-CN, at most %d characters", MaxLocaleLen))
	}
	if in.Timezone != "" {
		if len(in.Timezone) > MaxTimezoneLen || !validTimezone(in.Timezone) {
			fe.Add("timezone", "an IANA time zone name such as Asia/Shanghai")
		}
	}
	return fe.Err()
}

func isIDChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

func isAPNsToken(s string) bool {
	if len(s) < MinAPNsToken || len(s) > MaxAPNsToken || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isFCMToken(s string) bool {
	return len(s) <= MaxFCMToken && isPrintableASCII(s)
}

// isPrintableASCII reports whether s is ASCII from '!' to '~'.
func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func isLocaleChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validTimezone(name string) bool {
	// "Local" loads, but names the server's zone, not the device's.
	if name == "Local" {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}

// normalize puts in the form it is stored in: APNs tokens in lower-case
// hex, so that one device registered twice in different cases is one row,
// and the provider's default platform in place of none.
func normalize(in Installation) Installation {
	if in.Provider == APNs {
		in.Token = strings.ToLower(in.Token)
	}
	if in.Platform == "" {
		in.Platform = DefaultPlatform(in.Provider)
	}
	return in
}

// ErrNotFound is returned when the installation does not exist.
var ErrNotFound = errors.New("installation not found")
