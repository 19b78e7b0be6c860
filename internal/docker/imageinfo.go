package docker

import (
	"context"
	"fmt"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

var _ deploy.ImageInfos = (*Client)(nil)

// ImageInfo returns a pulled image's created time and labels (its
// config's, as `docker build --label` writes them). A created time that
// is missing, unreadable or the Unix epoch (what reproducible builds
// write, SOURCE_DATE_EPOCH=0) is zero: the image's age is unknown.
func (c *Client) ImageInfo(ctx context.Context, ref string) (deploy.ImageInfo, error) {
	res, err := c.cli.ImageInspect(ctx, ref)
	if err != nil {
		return deploy.ImageInfo{}, c.fail("image_inspect", fmt.Errorf("inspect image %s: %w", ref, engineErr(err)))
	}
	var info deploy.ImageInfo
	if t, err := time.Parse(time.RFC3339Nano, res.Created); err == nil && t.Unix() > 0 {
		info.Created = t
	}
	if res.Config != nil {
		info.Labels = res.Config.Labels
	}
	return info, nil
}
