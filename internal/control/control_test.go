package control

import (
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// TestActionScopes: the one table of what each action takes, and only
// the actions in it parse.
func TestActionScopes(t *testing.T) {
	for a, want := range map[Action]deployments.Verb{
		Deploy: deployments.VerbDeploy, Rollback: deployments.VerbDeploy,
		Pause: deployments.VerbDeploy, Resume: deployments.VerbDeploy,
		Approve: deployments.VerbApprove, Reject: deployments.VerbApprove,
	} {
		if got, ok := ParseAction(string(a)); !ok || got != a || a.Verb() != want {
			t.Errorf("%s: parsed %q %v, verb %v, want %v", a, got, ok, a.Verb(), want)
		}
	}
	for _, bad := range []string{"", "delete", "Pause", "read"} {
		if _, ok := ParseAction(bad); ok {
			t.Errorf("%q parses as an action", bad)
		}
	}
}
