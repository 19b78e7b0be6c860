package daemon

import (
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/proxy"
)

// canaryDoor is the proxy as the deploy engine's front door, canaries
// included (deploy.CanaryDoor).
type canaryDoor struct{ *proxy.Proxy }

var _ deploy.CanaryDoor = canaryDoor{}

func (c canaryDoor) CanaryFigures(deployment string) (current, canary deploy.Figures) {
	cur, can := c.Figures(deployment)
	return figures(cur), figures(can)
}

func figures(f proxy.Figures) deploy.Figures {
	return deploy.Figures{Requests: f.Requests, ServerError: f.ServerError, ConnErrors: f.ConnErrors,
		Buckets: f.Buckets, Bounds: proxy.LatencyBuckets}
}
