package deploy

import (
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Delivery is one webhook delivery or API request that asked for
// something: who sent what, which deployments it was accepted for, and why
// the others ignored it. The HTTP side makes it, the history keeps it, the
// API lists it.
type Delivery struct {
	Seq      int64 // the place in the history's list, set when kept or recorded; the cursor of its pages
	ID       string
	Source   string // the webhook source, or "api"
	Image    string
	Tag      string
	Pusher   string // who pushed, as the sender says
	Actor    string // the API token's name
	Received time.Time
	Accepted []string              // deployments queued
	Ignored  []deployments.Ignored // and why the others were not
}

// DeployQuery selects deploys from the history: empty fields match
// everything. Limit is at most how many; Before, when not 0, keeps only
// deploys with a smaller id: the cursor of the next page.
type DeployQuery struct {
	Deployment  string
	Environment string
	Outcome     string
	Delivery    string
	Limit       int
	Before      int64
}
