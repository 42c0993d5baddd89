package pushjob_test

import (
	"testing"

	"github.com/pushd/pushd/pushjob"
)

// live_activity decodes from the names the contract documents.
func TestDecodeLiveActivity(t *testing.T) {
	in := `{"message_id":"m","conversation_id":"c","recipients":["a"],"push":{"ios":{"push_type":"liveactivity","title":"Call",` +
		`"live_activity":{"event":"start","content_state":{"speaker":"alice"},"dismissal_date":1700000100,"stale_date":1700000050,` +
		`"attributes_type":"CallAttributes","attributes":{"room":"r1"}}}}}`
	j, err := pushjob.Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
	la := j.Push.IOS.LiveActivity
	if j.Push.IOS.PushType != pushjob.PushTypeLiveActivity || la == nil || la.Event != pushjob.LiveActivityStart ||
		la.ContentState["speaker"] != "alice" || la.DismissalDate != 1700000100 || la.StaleDate != 1700000050 ||
		la.AttributesType != "CallAttributes" || la.Attributes["room"] != "r1" {
		t.Errorf("decoded %+v", la)
	}
}

func TestPushTypeSilent(t *testing.T) {
	for pt, want := range map[pushjob.PushType]bool{
		pushjob.PushTypeAlert: false, pushjob.PushTypeVoIP: false, pushjob.PushTypeComplication: false,
		pushjob.PushTypeLiveActivity: false, pushjob.PushTypeBackground: true, pushjob.PushTypeLocation: true,
		pushjob.PushTypePushToTalk: true, pushjob.PushTypeWidgets: true, pushjob.PushTypeControls: true,
		pushjob.PushTypeFileProvider: true,
	} {
		if got := pt.Silent(); got != want {
			t.Errorf("%s.Silent() = %v, want %v", pt, got, want)
		}
	}
}
