package cli

import (
	"fmt"
	"runtime/debug"
)

type versionCmd struct{}

func (c *versionCmd) Run(in *invocation) error {
	_, err := fmt.Fprintf(in.Stdout, "liftoff %s\n", in.Version)
	return err
}

// versionOf is the version main was built with (-ldflags "-X
// main.version=v1.2.3"), else the module's, else "(devel)".
func versionOf(v string) string {
	if v != "" {
		return v
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
