package cli

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

// previewsCmd is liftoff previews DEPLOYMENT (list, the default) and
// liftoff previews rm DEPLOYMENT TAG.
type previewsCmd struct {
	List previewsListCmd `cmd:"" default:"withargs" help:"List a deployment's previews (the default: liftoff previews DEPLOYMENT)."`
	Rm   previewsRmCmd   `cmd:"" help:"Remove a deployment's preview of TAG: its route, then its container."`
}

func (c *previewsCmd) Help() string {
	return `A deployment with previews (deployments[].previews) starts a container of
its own for each pushed tag its rule matches, served by the front door at
the host its template gives. liftoff previews DEPLOYMENT lists them;
liftoff previews rm DEPLOYMENT TAG removes one (scope deploy:<environment>).`
}

// Run is never called: kong runs list or rm. It makes previews a client
// command, with the client flags.
func (c *previewsCmd) Run(s *session) error { return nil }

type previewsListCmd struct {
	Deployment string `arg:"" help:"The deployment whose previews to list."`
}

func (c *previewsListCmd) Help() string {
	return `One line per preview that runs: its tag, its URL, when its last push was
deployed and when it expires without another (previews.ttl). Needs the
read scope.`
}

func (c *previewsListCmd) Run(s *session) error {
	var list apiv1.Previews
	a, err := s.api.get(s.ctx, deploymentPath(c.Deployment, "previews"), nil, &list)
	if err != nil {
		return s.explainFor(err, c.Deployment)
	}
	return s.list(a, len(list.Previews), "No previews of "+c.Deployment+" run.", func() {
		now := s.now()
		tw := newTable(s.stdout)
		fmt.Fprintln(tw, "TAG\tURL\tPUSHED\tEXPIRES\tCONTAINER\t")
		for _, p := range list.Previews {
			fmt.Fprintf(tw, "%s\t%s\t%s\tin %s\t%s\t\n", p.Tag, p.URL, ago(now, p.Pushed), p.Expires.Sub(now).Round(1e9), p.Name)
		}
		tw.Flush()
	})
}

type previewsRmCmd struct {
	Deployment string `arg:"" help:"The deployment the preview belongs to."`
	Tag        string `arg:"" help:"The preview's tag (pr-123)."`
}

func (c *previewsRmCmd) Help() string {
	return `The front door stops routing the preview's host, then its container is
stopped and removed. Fails (404) when no preview of that tag runs, (409)
while a deploy of it runs. Needs the scope deploy:<environment>.`
}

func (c *previewsRmCmd) Run(s *session) error {
	path := deploymentPath(c.Deployment, "previews") + "/" + url.PathEscape(c.Tag)
	a, err := s.api.call(s.ctx, http.MethodDelete, path, nil, nil)
	if err != nil {
		return s.explain(err)
	}
	var r apiv1.PreviewRemoved
	if err := s.api.decode(a, &r); err != nil {
		return err
	}
	if s.json {
		return s.printJSON(a.body)
	}
	fmt.Fprintf(s.stdout, "Removed the preview %s of %s (container %s).\n", c.Tag, c.Deployment, r.Removed)
	return nil
}
