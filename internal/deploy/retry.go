package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// retry runs f until it succeeds, fails for a reason other than the engine
// being unavailable (ErrUnavailable), or the retries run out; the waits
// grow from RetryBackoff, doubling, up to 30s.
func (e *Engine) retry(ctx context.Context, log zerolog.Logger, op string, f func(ctx context.Context) error) error {
	wait := e.opts.RetryBackoff
	for try := 1; ; try++ {
		err := f(ctx)
		if err == nil || !errors.Is(err, ErrUnavailable) || try > e.opts.Retries || ctx.Err() != nil {
			return err
		}
		log.Warn().Err(err).Str("step", op).Int("try", try).Dur("wait", wait).Msg("Docker engine or registry unavailable; retrying")
		// Shutting down, a deploy that has touched no container yet gives
		// up at once rather than hold the stop; later steps keep trying.
		var closing <-chan struct{}
		if op == StepResolve || op == StepPull || op == StepPrepare {
			closing = e.closing
		}
		select {
		case <-ctx.Done():
			return err
		case <-closing:
			return fmt.Errorf("%w (liftoff is stopping)", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
