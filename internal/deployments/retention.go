package deployments

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Defaults of history_retention.
const (
	DefaultDeliveryAge   = 30 * 24 * time.Hour
	DefaultMaxDeliveries = 100_000
	DefaultDeploys       = 400
)

// Retention is history_retention: how much history the file keeps. The
// daemon prunes what is beyond it in the background, a small batch at a
// time. The journal's open work (unfinished deploys, requests still
// queued, held or pending, and the deliveries they came from) is never
// pruned.
type Retention struct {
	// Deliveries is the age after which a recorded delivery (and a settled
	// request) is pruned, as written: "30d", "72h". DeliveryAge is its
	// value once validated (default DefaultDeliveryAge).
	Deliveries  string        `yaml:"deliveries"`
	DeliveryAge time.Duration `yaml:"-"`
	// MaxDeliveries caps how many deliveries are kept, whatever their age,
	// so that a flood of pushes within the age cannot grow the file
	// without bound. Default DefaultMaxDeliveries.
	MaxDeliveries int `yaml:"max_deliveries"`
	// Deploys is how many of the newest deploys each deployment keeps;
	// beyond them, the deploys rollback and promote_from need are kept too
	// (the newest success of each of the deployment's Deploys newest
	// succeeded digests). Default DefaultDeploys.
	Deploys int `yaml:"deploys"`
}

var errBadAge = errors.New("want a duration such as \"30d\" or \"72h\"")

func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, errBadAge
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errBadAge
	}
	return d, nil
}

// check fills the defaults of what is left out and refuses what cannot
// be meant.
func (r *Retention) check(p *problems) {
	const at = "history_retention"
	r.DeliveryAge = DefaultDeliveryAge
	if r.Deliveries != "" {
		d, err := parseAge(r.Deliveries)
		switch {
		case err != nil:
			p.addf(at+".deliveries", "%s: %v", p.quote(at+".deliveries", r.Deliveries), err)
		case d < time.Hour:
			p.addf(at+".deliveries", "want at least 1h (the default is 30d): the page and the API show the deliveries of the last hours")
		default:
			r.DeliveryAge = d
		}
	}
	switch {
	case r.MaxDeliveries == 0:
		r.MaxDeliveries = DefaultMaxDeliveries
	case r.MaxDeliveries < 100:
		p.addf(at+".max_deliveries", "want at least 100 (the default is %d)", DefaultMaxDeliveries)
	}
	switch {
	case r.Deploys == 0:
		r.Deploys = DefaultDeploys
	case r.Deploys < 2:
		p.addf(at+".deploys", "want at least 2 per deployment (the default is %d): a rollback needs the deploy before the last", DefaultDeploys)
	}
}
