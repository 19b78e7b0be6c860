package deployments

// Defaults are filled in before the checks of their level, so that the
// checks see the values in force: a default timeout is compared with
// min_uptime like a given one.

// fillDefaults sets the top-level settings the file leaves out.
func (c *Config) fillDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.History == "" {
		c.History = DefaultHistory
	}
	if c.HookRateLimit == 0 {
		c.HookRateLimit = DefaultHookRate
	}
}

// fillDefaults sets what a deployment leaves out. The container is named
// after the deployment by default, so a container name that was given must
// be checked before this runs.
func (d *Deployment) fillDefaults() {
	if d.Container.Name == "" {
		d.Container.Name = d.Name
	}
	if d.Engine == "" {
		d.Engine = LocalEngine
	}
	if d.Strategy == "" {
		d.Strategy = StopFirst
	}
	if d.StopTimeout == 0 {
		d.StopTimeout = DefaultStopTimeout
	}
	d.Health.fillDefaults()
}

// fillDefaults sets the gate's defaults. Interval and Retries are those of
// Cmd, and stay 0 without one.
func (h *Health) fillDefaults() {
	if h.Timeout == 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.MinUptime == 0 {
		h.MinUptime = DefaultMinUptime
	}
	if len(h.Cmd) > 0 {
		if h.Interval == 0 {
			h.Interval = DefaultHealthInterval
		}
		if h.Retries == 0 {
			h.Retries = DefaultHealthRetries
		}
	}
}
