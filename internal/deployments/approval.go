package deployments

import "time"

// Approval is environments.<name>.approval: whether a push to a deployment
// of the environment waits for an approval (by a caller with
// approve:<environment>) before it deploys, and for how long.
type Approval struct {
	Required bool `yaml:"required"`
	// Timeout is how long a push waits for its approval before it expires
	// (DefaultApprovalTimeout, 24h, when not given).
	Timeout time.Duration `yaml:"timeout"`

	timeoutGiven bool // the file gave timeout, even as 0s
}

// UnmarshalYAML decodes approval and remembers whether timeout was given,
// so that an explicit "timeout: 0s" is refused instead of turning into the
// default. It is the function form, which keeps the decoder's strictness
// (unknown keys) and its line-numbered type errors.
func (a *Approval) UnmarshalYAML(unmarshal func(any) error) error {
	// Named so that yaml's type errors say "into deployments.Approval".
	type Approval struct {
		Required bool           `yaml:"required"`
		Timeout  *time.Duration `yaml:"timeout"`
	}
	var raw Approval
	err := unmarshal(&raw)
	a.Required, a.Timeout, a.timeoutGiven = raw.Required, 0, false
	if raw.Timeout != nil {
		a.Timeout = *raw.Timeout
		// After a type error the file is refused anyway: no second error
		// about a timeout that may be the one that failed.
		a.timeoutGiven = err == nil
	}
	return err
}

// checkApproval checks an environment's approval and fills in the default
// timeout.
func checkApproval(p *problems, at string, a *Approval) {
	given := a.timeoutGiven || a.Timeout != 0
	switch {
	case !a.Required && given:
		p.addf(at+".timeout", "has no effect without required: true (pushes deploy without approval): set required: true, or remove timeout")
	case a.Required && given && a.Timeout <= 0:
		p.addf(at+".timeout", "must be positive, e.g. 24h: how long a push waits for its approval before it expires")
	case a.Required && a.Timeout == 0:
		a.Timeout = DefaultApprovalTimeout
	}
}

// Approval tells whether a push to d must be approved before it deploys,
// and how long it may wait for that before it expires. A deployment
// without an environment, or nil, needs no approval.
func (c *Config) Approval(d *Deployment) (required bool, timeout time.Duration) {
	if d == nil || d.Environment == "" {
		return false, 0
	}
	a := c.Environments[d.Environment].Approval
	if !a.Required {
		return false, 0
	}
	if a.Timeout <= 0 {
		return true, DefaultApprovalTimeout
	}
	return true, a.Timeout
}
