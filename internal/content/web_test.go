package content

import (
	"maps"
	"testing"

	"github.com/pushd/pushd/pushjob"
)

func TestResolveWeb(t *testing.T) {
	j := testJob()
	j.Push = &pushjob.Content{
		Title: "shared", Body: "body", Sound: "ding", Badge: &pushjob.Badge{Value: 2}, Data: map[string]any{"a": 1},
		Web: &pushjob.PlatformContent{Title: "web title", Icon: "https://x.example/i.png", ClickAction: "https://x.example/c", Data: map[string]any{"w": 2}},
	}
	r := Resolve(Defaults{Sound: "default", Category: "MSG"}, j)
	w := r.Web
	if w.Title != "web title" || w.Body != "body" || w.Icon != "https://x.example/i.png" || w.ClickAction != "https://x.example/c" {
		t.Errorf("web = %+v", w)
	}
	if w.Badge != nil || w.Sound != "" || w.Category != "" || w.ThreadID != "" {
		t.Errorf("web keeps what a browser cannot use: badge %v sound %q category %q thread %q", w.Badge, w.Sound, w.Category, w.ThreadID)
	}
	if !maps.Equal(w.Data, map[string]any{"a": 1, "w": 2}) {
		t.Errorf("web data = %v", w.Data)
	}
	if _, ok := r.Android.Data["w"]; ok || r.Android.Icon != "" {
		t.Errorf("the web block reached Android: %+v", r.Android)
	}
}
