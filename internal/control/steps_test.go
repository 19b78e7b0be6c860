package control

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

// TestStepsAreTheDeploySteps keeps apiv1's step order (the page's bar, the
// CLI's phases) in step with the steps the deploy journals: every Step
// constant of deploy/journal.go, once, in the order they are declared
// there, which is the order a deploy takes them.
func TestStepsAreTheDeploySteps(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../deploy/journal.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 || !strings.HasPrefix(vs.Names[0].Name, "Step") {
			return true
		}
		if lit, ok := vs.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			steps = append(steps, s)
		}
		return true
	})
	if len(steps) == 0 {
		t.Fatal("no Step constants in deploy/journal.go")
	}
	if got := apiv1.Steps(); !slices.Equal(got, steps) {
		t.Errorf("apiv1.Steps() is %v, the deploy's steps are %v", got, steps)
	}
}
