package dispatch

import (
	"context"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/internal/installations"
	"github.com/pushd/pushd/pushjob"
)

// content resolves the job's content against the app's defaults, once for
// every platform, and the badge each pending device shows. "Increment"
// bumps the stored badge of the fresh devices (never tried for this
// message), which the claim step does; the others' stored number already
// counts it. A browser shows no number: web devices get none.
func (p *Pipeline) content(_ context.Context, a *attempt) error {
	a.content = content.Resolve(a.app.Defaults, a.job)
	a.badges = make(map[string]int)
	a.bump = nil
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
		case a.ledger.fresh(d.ID):
			a.bump = append(a.bump, d.ID)
		default:
			a.badges[d.ID] = d.Badge
		}
	}
	return nil
}
