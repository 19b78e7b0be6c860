package apiv1

import (
	"fmt"
	"time"
)

// Canary is a canary release in progress (deployments[].proxy.canary): the
// new container takes Weight percent of the deployment's clients beside
// the old one, at step Step of Steps. Old and New are what the front
// door measured of each in the step so far; the step is judged by them.
// GET /deployments/{name} shows it in Deployment.Canary, and
// POST /deployments/{name}/canary/promote and .../canary/abort end it.
type Canary struct {
	Tag            string    `json:"tag"`
	Digest         string    `json:"digest"`
	PreviousDigest string    `json:"previous_digest"`
	Steps          []int     `json:"steps"` // the weights, in percent
	Step           int       `json:"step"`  // 1 for the first
	Weight         int       `json:"weight"`
	Started        time.Time `json:"started"`
	StepStarted    time.Time `json:"step_started"`
	Old            Side      `json:"old"`
	New            Side      `json:"new"`
}

// Side is one container's figures in a canary step so far: requests
// answered, those answered 5xx (Unreachable included: the container could
// not be reached or did not answer in time), and the 99th percentile
// latency (the upper bound of its bucket).
type Side struct {
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	Unreachable int64   `json:"unreachable"`
	ErrorRate   float64 `json:"error_rate"` // 0 to 1
	P99Seconds  float64 `json:"p99_seconds"`
}

// CanaryEnded answers POST .../canary/promote and .../canary/abort: the
// canary was told to end (Action "promote" or "abort"); the deploy's
// outcome follows, as for any deploy (GET /deploys?delivery=).
type CanaryEnded struct {
	Deployment string `json:"deployment"`
	Action     string `json:"action"`
	Delivery   string `json:"delivery"` // of the deploy the canary is part of
}

// Summary says where the canary is, in one line, as the CLI and the page
// show it: "v2 at step 1 of 3 (5% of clients) since 12s ago: new 3 of 140
// answered 5xx (2.14%), p99 5ms; old 0 of 2660 (0.00%), p99 5ms".
func (c Canary) Summary(now time.Time) string {
	return fmt.Sprintf("%s at step %d of %d (%d%% of clients) since %s: new %s; old %s",
		c.Tag, c.Step, len(c.Steps), c.Weight, Ago(now, c.StepStarted), c.New.Summary(), c.Old.Summary())
}

// Summary says a side's figures in a few words: "3 of 140 answered 5xx
// (2.14%), 1 unreachable, p99 25ms".
func (s Side) Summary() string {
	out := fmt.Sprintf("%d of %d answered 5xx (%.2f%%)", s.Errors, s.Requests, 100*s.ErrorRate)
	if s.Unreachable > 0 {
		out += fmt.Sprintf(", %d unreachable", s.Unreachable)
	}
	return out + ", p99 " + time.Duration(s.P99Seconds*float64(time.Second)).String()
}
