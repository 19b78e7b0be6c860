package deploy

import "time"

// waits are the engine's fixed waits in real time: how often it looks at
// a container, a stop or Swarm's update, and the margins it allows. New
// fills in the defaults below; the package's tests shrink them, so that
// their fakes answer in milliseconds what an engine answers in seconds.
type waits struct {
	// poll is how often the gate looks at the new container, and a
	// repair at a stop in flight.
	poll time.Duration
	// probe is how often the gate asks health.url again.
	probe time.Duration
	// converge is the step of a repair's pauses between its looks (the
	// n-th round waits n steps).
	converge time.Duration
	// stopMargin is added to a deployment's stop_timeout when waiting for
	// a stop that the interrupted process asked for: the engine kills the
	// container at the grace period's end and needs a moment to notice.
	stopMargin time.Duration
	// servicePoll is how often a deploy looks at Swarm's update;
	// serviceSlack is added to the bound of that wait (serviceWait).
	servicePoll, serviceSlack time.Duration
	// drain is how long start-first leaves the old container running
	// once it is out of Docker's DNS (see drainTime).
	drain time.Duration
}

// defaultWaits are the waits of every engine outside tests.
var defaultWaits = waits{
	poll:         100 * time.Millisecond,
	probe:        500 * time.Millisecond,
	converge:     200 * time.Millisecond,
	stopMargin:   5 * time.Second,
	servicePoll:  250 * time.Millisecond,
	serviceSlack: 10 * time.Second,
	drain:        drainTime,
}

// orDefault returns w with each wait left zero set to its default.
func (w waits) orDefault() waits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&w.poll, defaultWaits.poll)
	def(&w.probe, defaultWaits.probe)
	def(&w.converge, defaultWaits.converge)
	def(&w.stopMargin, defaultWaits.stopMargin)
	def(&w.servicePoll, defaultWaits.servicePoll)
	def(&w.serviceSlack, defaultWaits.serviceSlack)
	def(&w.drain, defaultWaits.drain)
	return w
}
