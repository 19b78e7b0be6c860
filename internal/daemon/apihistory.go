package daemon

import (
	"context"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/history"
	"github.com/liftoff-deploy/liftoff/internal/server"
)

// apiHistory gives the management API the history it reads, in the
// server's terms.
type apiHistory struct{ s *history.Store }

func (h apiHistory) Deploys(ctx context.Context, q server.DeployQuery) ([]deploy.Record, int64, error) {
	return h.s.Deploys(ctx, history.DeployQuery(q))
}

func (h apiHistory) Deploy(ctx context.Context, id int64) (deploy.Record, bool, error) {
	return h.s.Deploy(ctx, id)
}

func (h apiHistory) LastSucceeded(ctx context.Context, deployment, except string) (deploy.Record, bool, error) {
	return h.s.LastSucceeded(ctx, deployment, except)
}

func (h apiHistory) Deliveries(ctx context.Context, limit int, before int64) ([]server.Delivery, int64, error) {
	ds, next, err := h.s.Deliveries(ctx, limit, before)
	out := make([]server.Delivery, len(ds))
	for i, d := range ds {
		ignored := make([]deployments.Ignored, len(d.Ignored))
		for j, ig := range d.Ignored {
			ignored[j] = deployments.Ignored(ig)
		}
		out[i] = server.Delivery{ID: d.ID, Source: d.Source, Image: d.Image, Tag: d.Tag, Pusher: d.Pusher,
			Actor: d.Actor, Received: d.Received, Accepted: d.Accepted, Ignored: ignored}
	}
	return out, next, err
}
