// Package mute keeps which clients muted which conversations, and decides
// which recipients of a message are dropped for it.
package mute

import (
	"errors"
	"slices"
	"time"

	"github.com/pushd/pushd/internal/fielderr"
)

// Mute is one client's mute of one conversation.
type Mute struct {
	AppID          string `json:"app_id"`
	ClientID       string `json:"client_id"`
	ConversationID string `json:"conversation_id"`
	// Until ends the mute; nil mutes until the client unmutes. A mute
	// past its end is ignored from then on, whether or not Pruner has
	// deleted it yet.
	Until *time.Time `json:"until"`
	// AllowMentions lets a message through when it @-mentions the client
	// or everyone.
	AllowMentions bool      `json:"allow_mentions"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
}

// Limits on a mute's ids.
const (
	MaxAppIDLen          = 128
	MaxClientIDLen       = 256
	MaxConversationIDLen = 256
)

// ErrNotFound is returned when there is no such mute.
var ErrNotFound = errors.New("mute not found")

// FieldError is one field that failed validation and the rule it broke.
type FieldError = fielderr.Error

// FieldErrors lists every invalid field of a mute.
type FieldErrors = fielderr.List

// Validate checks every field and reports all that are wrong, as a
// *FieldErrors. A mute that would already be over at now is refused: the
// caller surely meant something else.
func (m Mute) Validate(now time.Time) error {
	fe := FieldErrors{What: "mute"}
	fe.CheckText("app_id", m.AppID, MaxAppIDLen, true)
	fe.CheckText("client_id", m.ClientID, MaxClientIDLen, true)
	fe.CheckText("conversation_id", m.ConversationID, MaxConversationIDLen, true)
	if m.Until != nil && !m.Until.After(now) {
		fe.Add("until", "must be in the future; omit it to mute until unmuted")
	}
	return fe.Err()
}

// Reason says why a recipient was dropped.
type Reason string

// ReasonMuted: the recipient muted the conversation and the message did not
// get through the mute.
const ReasonMuted Reason = "muted"

// Decide splits a message's recipients into those to push and those a mute
// drops. active holds the recipients' mutes still in force, by client id
// (Store.Active's answer). force pushes to everyone; a mute that allows
// mentions lets the message through when it mentions everyone or the
// recipient. keep is in recipients' order.
func Decide(recipients []string, active map[string]Mute, mentions []string, mentionAll, force bool) (keep []string, dropped map[string]Reason) {
	dropped = make(map[string]Reason)
	if force || len(active) == 0 {
		return slices.Clone(recipients), dropped
	}
	mentioned := make(map[string]bool, len(mentions))
	for _, c := range mentions {
		mentioned[c] = true
	}
	keep = make([]string, 0, len(recipients))
	for _, c := range recipients {
		m, muted := active[c]
		if muted && !(m.AllowMentions && (mentionAll || mentioned[c])) {
			dropped[c] = ReasonMuted
			continue
		}
		keep = append(keep, c)
	}
	return keep, dropped
}
