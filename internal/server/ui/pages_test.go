package ui

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestPhaseOrderHasEveryStep keeps the order of a deploy's bar in step
// with the steps the deploy journals: every Step constant of
// deploy/journal.go, once.
func TestPhaseOrderHasEveryStep(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../../deploy/journal.go", nil, 0)
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
	slices.Sort(steps)
	got := slices.Sorted(slices.Values(phaseOrder))
	if !slices.Equal(got, steps) {
		t.Errorf("phaseOrder has %v, the deploy's steps are %v", got, steps)
	}
}

func TestBarFollowsPhaseOrder(t *testing.T) {
	b := bar(map[string]float64{"gate": 1, "service": 1, "pull": 2})
	var names []string
	for _, p := range b {
		names = append(names, p.Name)
	}
	if want := []string{"pull", "service", "gate"}; !slices.Equal(names, want) {
		t.Errorf("bar %v, want %v", names, want)
	}
	if b[0].Width != 50 || b[1].X != 50 {
		t.Errorf("bar %+v: want pull 50 wide, service from 50", b)
	}
}
