package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// PreviewEngine is what the previews' API asks of the deploy engine
// (*deploy.Engine); an Engine without it has no previews.
type PreviewEngine interface {
	Previews(deployment string) []deploy.Preview
	RemovePreview(ctx context.Context, deployment, tag string) error
}

// Previews lists d's running previews as apiv1 shows them.
func (s *Service) Previews(d *deployments.Deployment) []apiv1.Preview {
	pe, ok := s.engine.(PreviewEngine)
	out := []apiv1.Preview{}
	if !ok {
		return out
	}
	scheme := "https://"
	if !s.previewsTLS() {
		scheme = "http://"
	}
	for _, p := range pe.Previews(d.Name) {
		out = append(out, apiv1.Preview{
			Name: p.Name, Deployment: p.Deployment, Tag: p.Tag, Host: p.Host,
			URL: scheme + p.Host + "/", Pushed: p.Pushed, Expires: p.Expires,
		})
	}
	return out
}

// previewsTLS tells whether the front door serves TLS.
func (s *Service) previewsTLS() bool {
	type doorTLS interface{ FrontDoorTLS() bool }
	if c, ok := s.catalogue().(doorTLS); ok {
		return c.FrontDoorTLS()
	}
	return true
}

// RemovePreview removes d's preview of tag: ErrNoDeployment if none runs,
// ErrConflict while a deploy of it runs.
func (s *Service) RemovePreview(ctx context.Context, p deployments.Principal, d *deployments.Deployment, tag string) error {
	pe, ok := s.engine.(PreviewEngine)
	if !ok {
		return ErrNoDeployment
	}
	err := pe.RemovePreview(ctx, d.Name, tag)
	switch {
	case errors.Is(err, deploy.ErrNoPreview):
		return fmt.Errorf("%w: no preview of %s for that tag runs", ErrNoDeployment, d.Name)
	case errors.Is(err, deploy.ErrBusy):
		return fmt.Errorf("%w: a deploy of the preview runs now; try again when it ends", ErrConflict)
	case err != nil:
		return err
	}
	s.log.Info().Str("deployment", d.Name).Str("tag", tag).Str("actor", p.Name).Msg("preview removed through the API")
	return nil
}
