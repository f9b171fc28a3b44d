package discovery

import (
	"context"
	"slices"

	"github.com/gotthard-proxy/gotthard/lb"
)

// Static is a fixed list of backends, reported once.
type Static []lb.Backend

// Watch reports the list, then waits for ctx to end.
func (s Static) Watch(ctx context.Context, update func([]lb.Backend)) error {
	update(slices.Clone(s))
	<-ctx.Done()
	return nil
}
