package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

type logsCmd struct {
	ID int64 `arg:"" help:"The deploy's id (liftoff history shows it)."`
}

func (c *logsCmd) Help() string {
	return `Prints what the deploy's backup and release commands printed: the last
64 KiB of each, secrets redacted. The output may hold data (a pg_dump's rows), so
it needs the scope logs:<env> of the deploy's environment (or logs:*, admin);
read alone sees only that a step failed and why, in one line (liftoff history).`
}

func (c *logsCmd) check() error {
	if c.ID <= 0 {
		return usagef("deploy id %d: want the id liftoff history shows", c.ID)
	}
	return nil
}

func (c *logsCmd) Run(s *session) error {
	var l apiv1.DeployLogs
	a, err := s.api.get(s.ctx, "/deploys/"+strconv.FormatInt(c.ID, 10)+"/logs", nil, &l)
	if err != nil {
		return s.explain(err)
	}
	if s.json {
		return s.printJSON(a.body)
	}
	if l.Backup == "" && l.Release == "" {
		fmt.Fprintf(s.stdout, "Deploy %d of %s: no backup or release output.\n", l.ID, l.Deployment)
		return nil
	}
	for _, part := range []struct{ name, out string }{{"backup", l.Backup}, {"release", l.Release}} {
		if part.out == "" {
			continue
		}
		fmt.Fprintf(s.stdout, "== %s of deploy %d (%s)\n%s\n", part.name, l.ID, l.Deployment, strings.TrimRight(part.out, "\n"))
	}
	return nil
}
