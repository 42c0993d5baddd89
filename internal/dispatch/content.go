package dispatch

import (
	"context"
	"fmt"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/pushjob"
)

// content resolves the job's content against the app's defaults, once for
// every platform, and the badge each pending device shows. "Increment"
// bumps the stored badge of the fresh devices (never tried for this
// message) in one statement; the others' stored number already counts it.
// A browser shows no number: web devices get none.
func (p *Pipeline) content(ctx context.Context, a *attempt) error {
	a.content = content.Resolve(a.app.Defaults, a.job)
	a.badges = make(map[string]int)
	var bump []string
	for _, d := range a.pending {
		var b *pushjob.Badge
		switch d.Platform {
		case installations.PlatformIOS:
			b = a.content.IOS.Badge
		case installations.PlatformAndroid:
			b = a.content.Android.Badge
		}
		switch {
		case b == nil:
		case !b.Increment:
			a.badges[d.ID] = b.Value
		case a.fresh[d.ID]:
			bump = append(bump, d.ID)
		default:
			a.badges[d.ID] = d.Badge
		}
	}
	if len(bump) == 0 {
		return nil
	}
	got, err := p.cfg.Registry.IncrementBadges(ctx, a.job.AppID, bump)
	if err != nil {
		return fmt.Errorf("increment badges: %w", err)
	}
	for id, n := range got {
		a.badges[id] = n
	}
	return nil
}
