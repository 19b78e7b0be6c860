package payload

import (
	"net/http"
	"strings"
)

// ghEvent is a GitHub package or registry_package event; the package is
// under the key named after the event.
type ghEvent struct {
	Action          string     `json:"action"`
	Package         *ghPackage `json:"package"`
	RegistryPackage *ghPackage `json:"registry_package"`
	Sender          struct {
		Login string `json:"login"`
	} `json:"sender"`
}

type ghPackage struct {
	Name        string `json:"name"`      // "web", or "repo/web": it may hold a slash
	Namespace   string `json:"namespace"` // the owner, lower-cased (owner.login keeps its case)
	PackageType string `json:"package_type"`
	Version     struct {
		CreatedAt  string `json:"created_at"`  // often 0001-01-01T00:00:00Z
		PackageURL string `json:"package_url"` // ghcr.io/acme/web:v1 (the owner's case may be kept)
		Container  struct {
			Tag struct {
				Name   string `json:"name"` // "" for a platform's manifest
				Digest string `json:"digest"`
			} `json:"tag"`
			Manifest struct {
				MediaType string `json:"media_type"`
				Config    struct {
					MediaType string `json:"media_type"` // "" for an index
				} `json:"config"`
			} `json:"manifest"`
		} `json:"container_metadata"`
	} `json:"package_version"`
	// Not registry.url: it names no container host (GitHub's example has
	// https://CONTAINER.pkg.github.com/<owner>).
}

// GHCR reads a GitHub webhook delivery: a package or registry_package
// event (published or updated) of a container package with a tag, or a
// ping. The caller checks X-Hub-Signature-256 first (VerifySignature).
//
// A multi-arch push sends one delivery per manifest: the platforms'
// manifests come untagged and are skipped; the index comes with the tag.
// The repository is the registry's host (that of
// package_version.package_url: ghcr.io, or a GitHub Enterprise Server's
// containers host) with the package's namespace and name, lower-cased as
// GHCR names images.
func GHCR(h http.Header, body []byte) (Parsed, error) {
	var p Parsed
	id, err := deliveryID("X-GitHub-Delivery", h.Get("X-GitHub-Delivery"))
	if err != nil {
		return Parsed{}, err
	}
	p.ID = id
	event := h.Get("X-GitHub-Event")
	if event == "" {
		return Parsed{}, invalid("X-GitHub-Event", "missing")
	}
	ev, err := read[ghEvent](h, body, senderJSON)
	if err != nil {
		return Parsed{}, err
	}

	key, pkg, other := "package", ev.Package, ev.RegistryPackage
	switch event {
	case "ping":
		p.Ping = true
		return p, nil
	case "package":
	case "registry_package":
		key, pkg, other = "registry_package", ev.RegistryPackage, ev.Package
	default:
		// A webhook that sends more events than it needs to is no error.
		p.Skipped = append(p.Skipped, Skip{Reason: "not a package event:" + shown(event)})
		return p, nil
	}
	if pkg == nil {
		return Parsed{}, invalid(key, "missing")
	}
	if other != nil {
		// GitHub sends one; two would be two packages for one delivery.
		return Parsed{}, invalid("body", "both package and registry_package")
	}
	c := pushes{p: &p}
	switch {
	case ev.Action != "published" && ev.Action != "updated":
		c.skip("", "action"+shown(ev.Action)+": only published and updated deploy")
		return p, nil
	case !strings.EqualFold(pkg.PackageType, "container"):
		c.skip("", "not a container package:"+shown(pkg.PackageType))
		return p, nil
	}
	ct := &pkg.Version.Container
	if mt := ct.Manifest.Config.MediaType; mt != "" && !isImageConfig(mt) {
		// GHCR stores Helm charts and other OCI artifacts as container
		// packages too.
		c.skip(ct.Tag.Name, "not an image: config media type"+shown(mt))
		return p, nil
	}
	path := key + ".package_version.container_metadata.tag"
	d, ok, err := c.tagged("", path+".name", ct.Tag.Name, path+".digest", ct.Tag.Digest)
	if err != nil {
		return Parsed{}, err
	} else if !ok {
		return p, nil
	}
	host, err := ghHost(key+".package_version.package_url", pkg.Version.PackageURL)
	if err != nil {
		return Parsed{}, err
	}
	if pkg.Namespace == "" {
		return Parsed{}, invalid(key+".namespace", "missing")
	}
	if pkg.Name == "" {
		return Parsed{}, invalid(key+".name", "missing")
	}
	r, err := repo(key+".name", host+"/"+lowerASCII(pkg.Namespace)+"/"+lowerASCII(pkg.Name))
	if err != nil {
		return Parsed{}, err
	}
	c.add(Push{Repo: r, Tag: ct.Tag.Name, Digest: d, Pusher: ev.Sender.Login,
		PushedAt: rfc3339(pkg.Version.CreatedAt)}, isIndex(ct.Manifest.MediaType))
	return p, nil
}

// ghHost is the registry host in front of a package_url
// (ghcr.io/acme/web:v1): ghcr.io when there is none.
func ghHost(path, packageURL string) (string, error) {
	if packageURL == "" {
		return "ghcr.io", nil
	}
	h, _, ok := strings.Cut(packageURL, "/")
	if !ok {
		return "", invalid(path, "want <registry host>/<namespace>/<name>[:<tag>]")
	}
	return host(path, h)
}

// isImageConfig tells whether mt is the config media type of a container
// image.
func isImageConfig(mt string) bool {
	return mt == "application/vnd.oci.image.config.v1+json" || mt == "application/vnd.docker.container.image.v1+json"
}

// Manifest media types: a push deploys only with one of these.
const (
	mediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mediaOCIIndex       = "application/vnd.oci.image.index.v1+json"
)

// isIndex tells whether mt is a multi-platform image's media type.
func isIndex(mt string) bool { return mt == mediaDockerList || mt == mediaOCIIndex }

// isManifest tells whether mt is an image manifest's or an index's.
func isManifest(mt string) bool {
	return isIndex(mt) || mt == mediaDockerManifest || mt == mediaOCIManifest
}
