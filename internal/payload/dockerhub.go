package payload

import (
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// dockerHubBody holds the fields of a Docker Hub delivery that liftoff
// reads; the others (callback_url, images, full_description, ...) are
// ignored. callback_url in particular is never called.
type dockerHubBody struct {
	PushData struct {
		Tag    string `json:"tag"`
		Pusher string `json:"pusher"`
		// PushedAt is unix seconds: an integer today, a float such as
		// 1.417566161e+09 in older deliveries.
		PushedAt float64 `json:"pushed_at"`
	} `json:"push_data"`
	Repository struct {
		RepoName  string `json:"repo_name"` // "acme/web", "library/nginx" or "nginx"
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"repository"`
}

// DockerHub reads a Docker Hub push: one tag of one repository, named by
// repo_name or else namespace/name, which must be on Docker Hub whatever
// host the payload names (the hook's token vouches for Docker Hub and
// nothing else). An empty tag is an error, not a skip: Docker Hub only
// calls on a tag. The Content-Type is not checked: Docker Hub sends JSON,
// and the body is what counts.
//
// DockerHubParser does the same, faster: it remembers the repositories.
func DockerHub(_ http.Header, body []byte) (Parsed, error) {
	return dockerHub(body, nil)
}

// DockerHubParser is DockerHub for a server: it remembers the
// repositories of recent deliveries as normalized, for the same few come
// again and again and imageref.NormalizeRepo costs more than the rest
// of a delivery's checks. Make one with NewDockerHubParser and keep it;
// it is safe for concurrent use.
type DockerHubParser struct {
	repos repoCache
}

// NewDockerHubParser returns a DockerHubParser with nothing remembered.
func NewDockerHubParser() *DockerHubParser {
	return &DockerHubParser{repos: repoCache{seed: maphash.MakeSeed()}}
}

// Parse is DockerHub.
func (p *DockerHubParser) Parse(_ http.Header, body []byte) (Parsed, error) {
	return dockerHub(body, &p.repos)
}

// dockerHub is DockerHub, normalizing repositories through repos (nil:
// none remembered).
func dockerHub(body []byte, repos *repoCache) (Parsed, error) {
	var b dockerHubBody
	if err := decode(body, &b, senderJSON); err != nil {
		return Parsed{}, err
	}

	const repoPath, tagPath = "repository.repo_name", "push_data.tag"
	name := b.Repository.RepoName
	if name == "" && b.Repository.Name != "" {
		name = b.Repository.Name
		if b.Repository.Namespace != "" {
			name = b.Repository.Namespace + "/" + name
		}
	}
	r, err := repos.repo(repoPath, name)
	if err != nil {
		return Parsed{}, err
	}
	if !strings.HasPrefix(r, "docker.io/") {
		// A name that normalizes is printable ASCII: safe to quote.
		return Parsed{}, invalid(repoPath, "%s is not on Docker Hub", strconv.Quote(truncate(name, 64)))
	}

	t := b.PushData.Tag
	if t == "" {
		return Parsed{}, invalid(tagPath, "missing")
	}
	var p Parsed
	if skip, err := tag(tagPath, t); err != nil {
		return Parsed{}, err
	} else if skip != "" {
		c := pushes{p: &p}
		c.skip(t, skip)
		return p, nil
	}
	// One push: built here rather than with pushes.add, which would
	// allocate its index on the hot path.
	p.Pushes = []Push{{
		Repo:     r,
		Tag:      t,
		Pusher:   truncate(b.PushData.Pusher, maxPusher),
		PushedAt: unixTime(b.PushData.PushedAt),
	}}
	return p, nil
}

// repoCache remembers repository names as imageref.NormalizeRepo
// normalizes them. It holds at most len(slots) names, so that deliveries
// of ever new names cannot grow it; each slot is one atomic pointer, so
// it takes no lock.
type repoCache struct {
	seed  maphash.Seed
	slots [64]atomic.Pointer[repoEntry]
}

type repoEntry struct{ name, repo string }

// normalize is imageref.NormalizeRepo, remembered in c unless c is
// nil. Errors are not remembered: they are rare, and cost what they cost.
func (c *repoCache) normalize(name string) (string, error) {
	if c == nil {
		return imageref.NormalizeRepo(name)
	}
	slot := &c.slots[maphash.String(c.seed, name)%uint64(len(c.slots))]
	if e := slot.Load(); e != nil && e.name == name {
		return e.repo, nil
	}
	r, err := imageref.NormalizeRepo(name)
	if err == nil {
		slot.Store(&repoEntry{name: name, repo: r})
	}
	return r, err
}
