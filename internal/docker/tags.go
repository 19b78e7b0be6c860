package docker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// Tags lists the tags of repo ("host/name", a mirror already applied by
// the caller as for Resolve), following the registry's pages (the Link
// header of /v2/<name>/tags/list). A repository the registry does not
// know is deploy.ErrNotFound; a registry that cannot be reached is
// deploy.ErrUnavailable; a 429 is a *RateLimited.
func (c *Client) Tags(ctx context.Context, repo string, auth deploy.Auth) ([]string, error) {
	r, err := name.NewRepository(repo)
	if err == nil && isLoopback(r.RegistryStr()) {
		r, err = name.NewRepository(repo, name.Insecure)
	}
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", repo, err)
	}
	rl := &rateLimit{}
	var tags []string
	err = withAuth(ctx, auth, func(a deploy.Auth) (err error) {
		opts := append([]remote.Option{
			remote.WithContext(ctx),
			remote.WithAuth(authenticator(a)),
			remote.WithUserAgent("liftoff"),
			remote.WithPageSize(1000),
			remote.WithRetryBackoff(remote.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}),
		}, rl.options()...)
		tags, err = remote.List(r, opts...)
		return err
	})
	if err != nil {
		err = rl.wrap(registryErr(ctx, err))
		return nil, c.fail("list_tags", redact(fmt.Errorf("list tags of %s: %w", repo, err), auth))
	}
	return tags, nil
}

// RateLimited is a registry's 429 answer: ask again after RetryAfter (0
// when the registry did not say).
type RateLimited struct {
	Wait time.Duration
	err  error
}

func (e *RateLimited) Error() string {
	if e.Wait > 0 {
		return fmt.Sprintf("rate limited by the registry (retry after %s): %v", e.Wait, e.err)
	}
	return fmt.Sprintf("rate limited by the registry: %v", e.err)
}

func (e *RateLimited) Unwrap() error { return e.err }

// RetryAfter is how long the registry asked to wait.
func (e *RateLimited) RetryAfter() time.Duration { return e.Wait }

// rateLimit notes a 429 answer to one registry call, and its Retry-After,
// which go-containerregistry's errors do not keep. The call does not
// retry a 429 itself: asking again before Retry-After is what a rate
// limit forbids.
type rateLimit struct {
	mu   sync.Mutex
	hit  bool
	wait time.Duration
}

func (rl *rateLimit) options() []remote.Option {
	return []remote.Option{
		remote.WithTransport(rl.transport(remote.DefaultTransport)),
		remote.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
	}
}

func (rl *rateLimit) transport(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		res, err := next.RoundTrip(req)
		if err == nil && res.StatusCode == http.StatusTooManyRequests {
			rl.mu.Lock()
			rl.hit, rl.wait = true, retryAfter(res.Header.Get("Retry-After"), time.Now())
			rl.mu.Unlock()
		}
		return res, err
	})
}

// limited tells whether the registry answered 429: a GET after a HEAD
// would ask again at once.
func (rl *rateLimit) limited() bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return rl.hit
}

// wrap makes err a *RateLimited if the registry answered 429.
func (rl *rateLimit) wrap(err error) error {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if err == nil || !rl.hit {
		return err
	}
	var already *RateLimited
	if errors.As(err, &already) {
		return err
	}
	return &RateLimited{Wait: rl.wait, err: err}
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
