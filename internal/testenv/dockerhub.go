package testenv

import (
	"fmt"
	"strings"
)

// DockerHubPayload returns the body of a DockerHub push webhook for
// repo ("namespace/name", as DockerHub names it) and tag, with every field
// DockerHub sends. repo and tag go in as they are, valid or not, so that
// tests can send bad ones too.
func DockerHubPayload(repo, tag string) string {
	ns, name, _ := strings.Cut(repo, "/")
	return fmt.Sprintf(`{
  "callback_url": "https://registry.hub.docker.com/u/%[1]s/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
  "push_data": {"pushed_at": 1732550400, "pusher": "ci-bot", "tag": %[3]q, "images": null},
  "repository": {"repo_name": %[1]q, "namespace": %[2]q, "name": %[4]q, "owner": %[2]q,
    "repo_url": "https://registry.hub.docker.com/u/%[1]s/", "status": "Active", "description": "",
    "full_description": null, "is_private": true, "is_official": false, "is_trusted": false,
    "star_count": 0, "comment_count": 0, "date_created": 1700000000}
}`, repo, ns, tag, name)
}
