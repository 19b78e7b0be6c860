package deployments

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Canary is deployments[].proxy.canary: after the new container passes its
// gate, liftoff's proxy sends it Steps[0] percent of the deployment's
// clients (each sticks to its side by a cookie), then Steps[1] and so on,
// each for StepInterval, and judges every step by what the proxy measured
// of both containers in that window. A step whose new side answers more
// 5xx than MaxErrorRate (and more than the old side did), or whose p99 is
// above MaxP99, aborts the canary: all traffic goes back to the old
// container and the new one is removed (rolled_back). Passing every step
// promotes: the usual switch to the new container.
type Canary struct {
	// Steps are the shares of clients, in percent (1 to 99, increasing),
	// the new container gets in turn.
	Steps []int `yaml:"steps"`
	// StepInterval is how long each step lasts before it is judged
	// (DefaultCanaryStepInterval, 2m).
	StepInterval time.Duration `yaml:"step_interval"`
	// MaxErrorRate is the largest share of the new side's requests that
	// may be answered 5xx (the proxy's own 502/504 when the container
	// cannot be reached included), as "1%" or "0.5%" (default 1%).
	MaxErrorRate string `yaml:"max_error_rate"`
	// MaxP99 bounds the new side's 99th percentile latency, as the proxy
	// measured it (0: not judged).
	MaxP99 time.Duration `yaml:"max_p99"`
	// MinRequests is how many requests the new side must have answered in
	// a step for it to be judged (DefaultCanaryMinRequests, 100); a step
	// that has fewer at StepInterval waits for them, up to MaxWait.
	MinRequests int `yaml:"min_requests"`
	// MaxWait bounds that wait (default: 5 × StepInterval); a step that
	// still lacks MinRequests then is judged on what it has, when it has
	// at least one request, else it passes (a quiet app cannot be judged;
	// the log says so).
	MaxWait time.Duration `yaml:"max_wait"`

	// ErrorRate is MaxErrorRate as a fraction (0.01 for "1%"), set by
	// validation.
	ErrorRate float64 `yaml:"-"`
}

// Canary defaults.
const (
	DefaultCanaryStepInterval = 2 * time.Minute
	DefaultCanaryMinRequests  = 100
	DefaultCanaryMaxErrorRate = "1%"
	canaryMaxWaitFactor       = 5
)

func (k *Canary) fillDefaults() {
	if k.StepInterval == 0 {
		k.StepInterval = DefaultCanaryStepInterval
	}
	if k.MinRequests == 0 {
		k.MinRequests = DefaultCanaryMinRequests
	}
	if k.MaxErrorRate == "" {
		k.MaxErrorRate = DefaultCanaryMaxErrorRate
	}
	if k.MaxWait == 0 {
		k.MaxWait = canaryMaxWaitFactor * k.StepInterval
	}
}

// checkCanary checks a proxied deployment's canary and fills its defaults.
func checkCanary(p *problems, at string, d *Deployment, null bool) {
	k := d.Proxy.Canary
	if null {
		p.addf(at, "given with no value: remove it, or give its steps")
		return
	}
	if d.Service != nil {
		p.addf(at, "a canary runs the new container beside the old one and splits the traffic between them; a service is updated by Swarm instead: remove canary or service")
	}
	k.fillDefaults()
	if len(k.Steps) == 0 {
		p.addf(at+".steps", "missing: want the new container's shares of clients in percent, increasing, e.g. [5, 25, 50]")
	}
	for j, s := range k.Steps {
		switch {
		case s < 1 || s > 99:
			p.addf(fmt.Sprintf("%s.steps[%d]", at, j), "%d: want a percentage from 1 to 99 (after the last step the new container gets all traffic)", s)
		case j > 0 && s <= k.Steps[j-1]:
			p.addf(fmt.Sprintf("%s.steps[%d]", at, j), "%d: want more than the step before (%d)", s, k.Steps[j-1])
		}
	}
	if k.StepInterval < 0 {
		p.addf(at+".step_interval", "must be positive, e.g. 2m")
	}
	if k.MaxWait < 0 {
		p.addf(at+".max_wait", "must be positive, e.g. 10m")
	}
	if k.MaxP99 < 0 {
		p.addf(at+".max_p99", "must be positive, e.g. 800ms, or 0 not to judge latency")
	}
	if k.MinRequests < 0 {
		p.addf(at+".min_requests", "must be positive, e.g. 200")
	}
	rate, err := parsePercent(k.MaxErrorRate)
	if err != nil {
		p.addf(at+".max_error_rate", "%s: %v", p.quote(at+".max_error_rate", k.MaxErrorRate), err)
	}
	k.ErrorRate = rate
}

// parsePercent reads "1%" or "0.5%" as a fraction from 0 to 1.
func parsePercent(s string) (float64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		return 0, fmt.Errorf("want a percentage such as 1%% or 0.5%%")
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	// Written as "not within" so that NaN, which compares false to
	// everything and would never fail a step, is refused too.
	if err != nil || !(v >= 0 && v <= 100) {
		return 0, fmt.Errorf("want a percentage from 0%% to 100%%, such as 1%% or 0.5%%")
	}
	return v / 100, nil
}
