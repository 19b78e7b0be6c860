package payload

import (
	"net/http"
	"strings"
)

// ecrEvent is an EventBridge event, as an API destination posts it when
// the rule has no input transformer.
type ecrEvent struct {
	ID         string `json:"id"`
	DetailType string `json:"detail-type"`
	Source     string `json:"source"`
	Account    string `json:"account"`
	Region     string `json:"region"`
	Time       string `json:"time"`
	Detail     struct {
		ActionType     string `json:"action-type"` // PUSH, DELETE
		Result         string `json:"result"`      // SUCCESS, FAILURE
		RepositoryName string `json:"repository-name"`
		ImageDigest    string `json:"image-digest"`
		ImageTag       string `json:"image-tag"` // absent for an untagged push
		ManifestType   string `json:"manifest-media-type"`
	} `json:"detail"`
}

// ECR reads an Amazon ECR "ECR Image Action" event that an EventBridge
// API destination posts (the hook compares the connection's header with
// its auth_header). A successful PUSH with a tag deploys; the registry
// host is <account>.dkr.ecr.<region>.amazonaws.com (.amazonaws.com.cn in
// China's regions). Other ECR events a broad rule forwards (scans, pull
// through cache, deletes) are skipped.
func ECR(h http.Header, body []byte) (Parsed, error) {
	ev, err := read[ecrEvent](h, body, senderJSON)
	if err != nil {
		return Parsed{}, err
	}
	var p Parsed
	if p.ID, err = deliveryID("id", ev.ID); err != nil {
		return Parsed{}, err
	}
	c := pushes{p: &p}
	d := &ev.Detail
	switch {
	case ev.Source != "aws.ecr":
		return Parsed{}, invalid("source", "want aws.ecr%s", shown(ev.Source))
	case ev.DetailType != "ECR Image Action":
		c.skip("", "not an image action: detail-type"+shown(ev.DetailType))
		return p, nil
	case d.ActionType != "PUSH":
		c.skip(d.ImageTag, "action-type"+shown(d.ActionType)+": only PUSH deploys")
		return p, nil
	case d.Result != "SUCCESS":
		c.skip(d.ImageTag, "the push failed: result"+shown(d.Result))
		return p, nil
	}
	dg, ok, err := c.tagged("", "detail.image-tag", d.ImageTag, "detail.image-digest", d.ImageDigest)
	if err != nil {
		return Parsed{}, err
	} else if !ok {
		return p, nil
	}
	hst, err := ecrHost(ev.Account, ev.Region)
	if err != nil {
		return Parsed{}, err
	}
	if d.RepositoryName == "" {
		return Parsed{}, invalid("detail.repository-name", "missing")
	}
	r, err := repo("detail.repository-name", hst+"/"+d.RepositoryName)
	if err != nil {
		return Parsed{}, err
	}
	c.add(Push{Repo: r, Tag: d.ImageTag, Digest: dg, PushedAt: rfc3339(ev.Time)}, isIndex(d.ManifestType))
	return p, nil
}

// ecrHost is the registry host of an account's private registry in a
// region.
func ecrHost(account, region string) (string, error) {
	if len(account) != 12 || strings.Trim(account, "0123456789") != "" {
		return "", invalid("account", "want 12 digits")
	}
	// us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-7
	parts := strings.Split(region, "-")
	ok := len(parts) >= 3 && len(region) <= 32
	for i, s := range parts {
		last := i == len(parts)-1
		ok = ok && s != "" && strings.Trim(s, "0123456789") == "" == last &&
			(last || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz") == "")
	}
	if !ok {
		return "", invalid("region", "want a region such as eu-west-1")
	}
	suffix := ".amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		suffix = ".amazonaws.com.cn"
	}
	return account + ".dkr.ecr." + region + suffix, nil
}
