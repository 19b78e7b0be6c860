package docker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestImageInfo: a pulled image's created time and labels, as the engine
// reports them; a missing time or the epoch of reproducible builds is
// zero; an image not pulled is ErrNotFound.
func TestImageInfo(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	e := testenv.Engine(t)
	c, _ := newClient(t)
	reg := e.Registry(t)
	built := time.Date(2026, 12, 1, 9, 30, 15, 123456789, time.UTC)
	labels := map[string]string{"org.opencontainers.image.revision": "3f9a0c1d", "com.example.team": "web"}
	for _, tc := range []struct {
		name    string
		created time.Time
		labels  map[string]string
		want    time.Time
	}{
		{"built", built, labels, built},
		{"no created", time.Time{}, nil, time.Time{}},
		{"the epoch", time.Unix(0, 0).UTC(), nil, time.Time{}},
	} {
		d := reg.Push(t, "acme/info", tc.name[:2], testenv.AppImage{Version: tc.name, Created: tc.created, Labels: tc.labels})
		ref := reg.Host() + "/acme/info@" + d
		if tc.name == "built" {
			if _, err := c.ImageInfo(ctx(t), ref); !errors.Is(err, deploy.ErrNotFound) {
				t.Errorf("before the pull: error %v, want ErrNotFound", err)
			}
		}
		if err := c.Pull(ctx(t), ref, deploy.Auth{}); err != nil {
			t.Fatal(err)
		}
		info, err := c.ImageInfo(ctx(t), ref)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !info.Created.Equal(tc.want) {
			t.Errorf("%s: created %s, want %s", tc.name, info.Created, tc.want)
		}
		for k, v := range tc.labels {
			if info.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", tc.name, k, info.Labels[k], v)
			}
		}
	}
}

// BenchmarkImageInfo is what the cool-down and the revision match add to
// a deploy: one image inspect of the pulled image.
func BenchmarkImageInfo(b *testing.B) {
	testenv.Slow(b)
	e := testenv.Engine(b)
	c, _ := newClient(b)
	reg := e.Registry(b)
	d := reg.Push(b, "acme/info", "bench", testenv.AppImage{Version: "bench", Created: time.Now(), Labels: map[string]string{"a": "b"}})
	ref := reg.Host() + "/acme/info@" + d
	if err := c.Pull(ctx(b), ref, deploy.Auth{}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.ImageInfo(b.Context(), ref); err != nil {
			b.Fatal(err)
		}
	}
}
