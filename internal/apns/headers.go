package apns

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/pushjob"
)

// CollapseID is j's apns-collapse-id, by the rule of content.Tag, fitted
// into Apple's 64 bytes: longer ids are hashed rather than cut, so two
// never share one.
func CollapseID(j pushjob.Job) string {
	id := content.Tag(j)
	if len(id) <= 64 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// Priority is the apns-priority of a push, by Apple's rule for its type:
// always 5 for background and fileprovider pushes, always 10 for
// pushtotalk; for the others 5 for a low-priority job (delivered when the
// device's power allows) and 10, at once, otherwise.
func Priority(pt pushjob.PushType, jp pushjob.Priority) int {
	switch pt {
	case pushjob.PushTypeBackground, pushjob.PushTypeFileProvider:
		return 5
	case pushjob.PushTypePushToTalk:
		return 10
	}
	if jp == pushjob.PriorityLow {
		return 5
	}
	return 10
}

// topicSuffixes are the push types whose apns-topic is not the bundle id
// itself but the bundle id with Apple's suffix for the type. Alert and
// background pushes (and unknown types) use the topic as it is.
var topicSuffixes = map[pushjob.PushType]string{
	pushjob.PushTypeVoIP:         ".voip",
	pushjob.PushTypeComplication: ".complication",
	pushjob.PushTypeLocation:     ".location-query",
	pushjob.PushTypePushToTalk:   ".voip-ptt",
	pushjob.PushTypeWidgets:      ".push-type.widgets",
	pushjob.PushTypeControls:     ".push-type.controls",
	pushjob.PushTypeFileProvider: ".pushkit.fileprovider",
	pushjob.PushTypeLiveActivity: ".push-type.liveactivity",
}

// topicFor is the apns-topic of a push of type pt to a device registered
// with installTopic, for an app whose topic is appTopic: the installation's
// own topic, or empty for the app's. A push type with a topic suffix goes
// to the suffixed form of that topic (the installation's own topic kept
// when it already ends in the suffix, another type's suffix replaced); it
// is empty only when neither the installation nor the app names a topic.
func topicFor(pt pushjob.PushType, installTopic, appTopic string) string {
	suffix, ok := topicSuffixes[pt]
	if !ok {
		return installTopic
	}
	t := installTopic
	if t == "" {
		t = appTopic
	}
	if t == "" || strings.HasSuffix(t, suffix) {
		return t
	}
	// An installation registered with another type's topic (its .voip
	// topic, say) names the same app: its bundle id is the base.
	for _, other := range topicSuffixes {
		if other == suffix {
			continue
		}
		if base, found := strings.CutSuffix(t, other); found && base != "" {
			t = base
			break
		}
	}
	return t + suffix
}
