// Package notify tells people what liftoff did: on each deploy outcome (and
// each push that awaits approval, or expired), it POSTs a Slack
// incoming-webhook message or a signed JSON document to every receiver of
// the config's notifications that asks for that event and environment.
//
// Delivery is best effort and never holds up a deploy: Send only puts a
// message in its receiver's bounded queue (a full queue drops it), and one
// goroutine per receiver sends its messages in order, each with a few
// tries, a timeout per try and a backoff between them. Receivers' URLs come
// only from the config; they are secrets, as is the signing key, and never
// appear in a log line, an error or a metric (the receiver's name does).
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Outcomes of a message, the outcome label of liftoff_notifications_total.
const (
	Sent    = "sent"    // a receiver answered 2xx
	Failed  = "failed"  // every try failed, or the answer said not to retry
	Dropped = "dropped" // never tried: the receiver's queue was full, or liftoff was stopping
)

// Defaults of Options.
const (
	DefaultQueueSize = 64
	DefaultTries     = 3
	DefaultTimeout   = 5 * time.Second
	DefaultBackoff   = time.Second
)

// Options configure a Notifier. Config is required.
type Options struct {
	// Config returns the configuration in force: its notifications and
	// public_url are read at each event, so a reload applies to the next
	// one.
	Config     func() *deployments.Config
	Logger     zerolog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered anywhere
	// Client sends the messages; nil, one that follows no redirect (a 3xx
	// answer is a failure: a message goes only where the config says).
	Client *http.Client
	// UserAgent is sent with every message (default "liftoff").
	UserAgent string
	// QueueSize is how many messages wait per receiver (default 64).
	QueueSize int
	// Tries is how many times a message is sent at most (default 3);
	// Timeout bounds each try (default 5s); Backoff is the wait before the
	// second try, doubling after (default 1s).
	Tries   int
	Timeout time.Duration
	Backoff time.Duration
}

// Notifier queues and sends messages. Its methods are safe for concurrent
// use; call Close to stop it.
type Notifier struct {
	opts   Options
	log    zerolog.Logger
	total  *prometheus.CounterVec
	client *http.Client

	ctx    context.Context // cancelled by Close when its deadline passes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex // guards what follows
	closed  bool
	workers map[string]*worker // by receiver name
}

// worker is one receiver's queue and the goroutine that empties it.
type worker struct {
	name string
	q    chan job
}

// job is one message for one receiver, as the config said when it was
// routed: a reload does not redirect messages already queued.
type job struct {
	rc  deployments.Notification
	msg Message
}

// New returns a Notifier with a worker for each receiver configured now
// (those a reload adds get theirs at their first message).
func New(opts Options) *Notifier {
	if opts.UserAgent == "" {
		opts.UserAgent = "liftoff"
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Tries <= 0 {
		opts.Tries = DefaultTries
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	n := &Notifier{
		opts:    opts,
		log:     opts.Logger,
		client:  client,
		workers: map[string]*worker{},
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liftoff_notifications_total",
			Help: "Notification messages by receiver and outcome (sent, failed, dropped).",
		}, []string{"receiver", "outcome"}),
	}
	reg.MustRegister(n.total)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.mu.Lock()
	n.ensureLocked(opts.Config())
	n.mu.Unlock()
	return n
}

// Deployed tells the receivers of a deploy's result (deploy.Options.OnDone):
// succeeded, failed, rolled_back and refused are events; unchanged is not.
func (n *Notifier) Deployed(r deploy.Result) {
	if r.Outcome == deploy.Expired {
		return // not a deploy: Dropped tells of it
	}
	if m, ok := fromResult(r); ok {
		n.Send(m)
	}
}

// Pending tells the receivers that a push awaits approval
// (deploy.Options.OnPending).
func (n *Notifier) Pending(r deploy.Request) {
	env := ""
	if cfg := n.opts.Config(); cfg != nil {
		if d := cfg.Deployment(r.Deployment); d != nil {
			env = d.Environment
		}
	}
	n.Send(fromPending(r, env))
}

// Canary tells the receivers that a canary release started, was promoted
// or was aborted (deploy.Options.OnCanary).
func (n *Notifier) Canary(ev deploy.CanaryEvent) {
	var d *deployments.Deployment
	if cfg := n.opts.Config(); cfg != nil {
		d = cfg.Deployment(ev.Status.Deployment)
	}
	n.Send(fromCanary(ev, d))
}

// Dropped tells the receivers of a push dropped without a deploy
// (deploy.Options.OnDropped): expired is an event; superseded and rejected
// are not.
func (n *Notifier) Dropped(r deploy.Result) {
	if r.Outcome != deploy.Expired {
		return
	}
	if m, ok := fromResult(r); ok {
		n.Send(m)
	}
}

// Send queues m for every receiver that asks for its event in its
// environment, adding the link to the deployment's page. It never blocks:
// a receiver whose queue is full loses the message (counted dropped).
func (n *Notifier) Send(m Message) {
	cfg := n.opts.Config()
	if cfg == nil {
		return
	}
	m.URL = cfg.DeploymentURL(m.Deployment)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ensureLocked(cfg)
	for _, rc := range cfg.Notifications {
		if !rc.Wants(m.Event, m.Environment) {
			continue
		}
		msg := m
		msg.ID = newID()
		log := n.log.With().Str("receiver", rc.Name).Str("event", m.Event).Str("deployment", m.Deployment).Logger()
		if n.closed {
			n.count(rc.Name, Dropped)
			log.Warn().Msg("notification dropped: liftoff is stopping")
			continue
		}
		select {
		case n.workers[rc.Name].q <- job{rc: rc, msg: msg}:
		default:
			n.count(rc.Name, Dropped)
			log.Warn().Int("queue", n.opts.QueueSize).Msg("notification dropped: the receiver's queue is full (it is slow or down)")
		}
	}
}

// ensureLocked starts a worker for each receiver of cfg that has none.
// n.mu is held.
func (n *Notifier) ensureLocked(cfg *deployments.Config) {
	if cfg == nil || n.closed {
		return
	}
	for _, rc := range cfg.Notifications {
		if _, ok := n.workers[rc.Name]; ok {
			continue
		}
		w := &worker{name: rc.Name, q: make(chan job, n.opts.QueueSize)}
		n.workers[rc.Name] = w
		for _, o := range []string{Sent, Failed, Dropped} {
			n.total.WithLabelValues(rc.Name, o) // every series from the start, at 0
		}
		n.wg.Add(1)
		go n.work(w)
	}
}

func (n *Notifier) count(receiver, outcome string) {
	n.total.WithLabelValues(receiver, outcome).Inc()
}

// Close stops taking messages and sends those queued, until ctx ends;
// then it gives up on the rest (counted dropped, or failed when a try had
// begun) and returns ctx's error once every worker has stopped.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		for _, w := range n.workers {
			close(w.q)
		}
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-ctx.Done():
		n.cancel()
		<-done
		return ctx.Err()
	}
}

// work sends w's messages, in order, until its queue is closed and empty.
func (n *Notifier) work(w *worker) {
	defer n.wg.Done()
	for j := range w.q {
		if n.ctx.Err() != nil {
			n.count(w.name, Dropped)
			n.log.Warn().Str("receiver", w.name).Str("event", j.msg.Event).Str("deployment", j.msg.Deployment).
				Msg("notification dropped: liftoff stopped before it could be sent")
			continue
		}
		n.deliver(w.name, j)
	}
}

// errPermanent marks a failure another try would not change.
var errPermanent = errors.New("not retried")

// deliver sends one message, with up to Tries tries, and counts its
// outcome.
func (n *Notifier) deliver(name string, j job) {
	log := n.log.With().Str("receiver", name).Str("event", j.msg.Event).Str("deployment", j.msg.Deployment).
		Str("id", j.msg.ID).Logger()
	fail := func(tries int, why string) {
		n.count(name, Failed)
		log.Warn().Int("tries", tries).Str("error", why).Msg("notification failed")
	}
	body, err := j.msg.body(j.rc.Format)
	if err != nil {
		fail(0, "cannot encode the message: "+err.Error())
		return
	}
	var sig string
	if j.rc.Format == deployments.NotifyJSON {
		key, err := j.rc.Key()
		if err != nil {
			fail(0, "cannot read the receiver's secret_file") // the error names the file, which may come from ${VAR}
			return
		}
		sig = Sign(key, body)
	}
	wait := n.opts.Backoff
	for try := 1; ; try++ {
		err := n.post(j, body, sig)
		if err == nil {
			n.count(name, Sent)
			log.Debug().Int("tries", try).Msg("notification sent")
			return
		}
		if try >= n.opts.Tries || errors.Is(err, errPermanent) || n.ctx.Err() != nil {
			fail(try, err.Error())
			return
		}
		log.Debug().Int("try", try).Str("error", err.Error()).Dur("retry_in", wait).Msg("notification not sent yet; trying again")
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			fail(try, err.Error()+"; liftoff stopped before the next try")
			return
		}
		wait *= 2
	}
}

// post makes one try. Its error never holds the URL.
func (n *Notifier) post(j job, body []byte, sig string) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.rc.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("the receiver's url cannot be used: %w", errPermanent)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", n.opts.UserAgent)
	if sig != "" {
		req.Header.Set("X-Liftoff-Event", j.msg.Event)
		req.Header.Set("X-Liftoff-Signature", sig)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		switch {
		case n.ctx.Err() != nil:
			return errors.New("liftoff stopped during the try")
		case ctx.Err() != nil:
			return fmt.Errorf("no answer within %s", n.opts.Timeout)
		}
		return errors.New(redact(err, j.rc.URL))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so that the connection is reused
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 300 && c < 400:
		return fmt.Errorf("answered %d: redirects are not followed: %w", c, errPermanent)
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return fmt.Errorf("answered %d", c)
	default:
		return fmt.Errorf("answered %d: %w", c, errPermanent)
	}
}

// redact says what went wrong with a request to rawURL without the URL,
// nor its host (dial and DNS errors name it).
func redact(err error, rawURL string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // "Post \"<url>\": ..."
	}
	s := err.Error()
	olds := []string{rawURL}
	if u, perr := url.Parse(rawURL); perr == nil {
		olds = append(olds, u.Host, u.Hostname())
	}
	for _, o := range olds {
		if o != "" {
			s = strings.ReplaceAll(s, o, "(receiver)")
		}
	}
	return s
}
