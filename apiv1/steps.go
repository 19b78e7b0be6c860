package apiv1

import (
	"cmp"
	"slices"
)

// steps are the steps a deploy journals, in the order it takes them; a
// deploy's Step and the keys of its Phases are among them.
var steps = [...]string{"resolve", "pull", "prepare", "backup", "release", "service",
	"stop", "rename", "create", "start", "gate", "canary", "publish", "cleanup", "rollback"}

// Steps returns the steps of a deploy in the order it takes them: resolve,
// pull, prepare, backup, release, service, stop, rename, create, start,
// gate, canary, publish, cleanup, rollback. A deploy takes some of them only.
func Steps() []string { return slices.Clone(steps[:]) }

// CompareSteps orders step names as a deploy takes them, for showing a
// deploy's Phases; a name that is not a step (from a newer liftoff) comes
// after the steps, by name.
func CompareSteps(a, b string) int {
	return cmp.Or(cmp.Compare(stepRank(a), stepRank(b)), cmp.Compare(a, b))
}

func stepRank(step string) int {
	if i := slices.Index(steps[:], step); i >= 0 {
		return i
	}
	return len(steps)
}
