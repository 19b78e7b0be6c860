package ui

import (
	"slices"
	"testing"
)

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
