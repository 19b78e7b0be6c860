package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// SubnetNetwork creates a bridge network with that name and a subnet of
// its own, as "docker network create --subnet" does, and returns its id
// and subnet. It is removed when the test ends.
//
// Only on such a network does the engine let a container be connected
// with an address chosen by the caller. The subnet is one the engine picks
// from its own pools (it creates the network plainly first, notes the
// subnet and creates it again with that subnet), so that it is no more
// likely than any other test network to clash with the machine's.
func (e *Eng) SubnetNetwork(t testing.TB, name string) (id, subnet string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for try := 1; ; try++ {
		res, err := e.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge"})
		if err != nil {
			t.Fatalf("testenv: create network %s: %v", name, err)
		}
		in, err := e.cli.NetworkInspect(ctx, res.ID, client.NetworkInspectOptions{})
		if err != nil {
			e.cli.NetworkRemove(ctx, res.ID, client.NetworkRemoveOptions{})
			t.Fatalf("testenv: inspect network %s: %v", name, err)
		}
		var pool network.IPAMConfig
		for _, c := range in.Network.IPAM.Config {
			if c.Subnet.Addr().Is4() {
				pool = c
				break
			}
		}
		if _, err := e.cli.NetworkRemove(ctx, res.ID, client.NetworkRemoveOptions{}); err != nil {
			t.Fatalf("testenv: remove network %s: %v", name, err)
		}
		if !pool.Subnet.IsValid() {
			t.Fatalf("testenv: network %s got no IPv4 subnet: %+v", name, in.Network.IPAM)
		}
		res, err = e.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
			Driver: "bridge",
			IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: pool.Subnet, Gateway: pool.Gateway}}},
		})
		if err != nil && try < 5 && strings.Contains(err.Error(), "overlaps") {
			continue // another test's network took the pool meanwhile
		}
		if err != nil {
			t.Fatalf("testenv: create network %s with subnet %s: %v", name, pool.Subnet, err)
		}
		e.mu.Lock()
		e.networks = append(e.networks, res.ID)
		e.mu.Unlock()
		return res.ID, pool.Subnet.String()
	}
}
