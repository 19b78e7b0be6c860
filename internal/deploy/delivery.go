package deploy

import (
	"crypto/rand"
	"encoding/hex"
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

// NewDeliveryID returns the id that names one delivery in the answer, the
// logs and the history: 24 hex digits, the first 12 the time in unix
// milliseconds and the rest random. Ids made later sort after, so that the
// history's index of them grows at its end: with random ids each insert
// lands on another page of a large index, and recording a delivery cost
// five times as much at 90k deliveries, and more as they grew
// (BenchmarkRecordDeliveries in history). 48 random bits make two ids of
// the same millisecond equal once in 2.8·10^14 pairs. Ids sort by time
// while the clock does not step back.
func NewDeliveryID() string {
	var b [12]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	rand.Read(b[6:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
