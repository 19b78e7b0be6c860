package daemon_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// The crash soak of an app of three processes: the liftoff binary is
// SIGKILLed at moments spread evenly over a deploy of the app (resolve,
// pull, release, and each process's swap and gate, the commit and the
// cleanups), for stop-first and start-first. After each restart:
//
//   - once reconcile is done (the resumed deploy's first engine create,
//     its release container, is held meanwhile; or, when the interrupted
//     deploy was finished forward, once the journal is settled), exactly
//     the app's three containers exist, all running, all of one digest:
//     the previous version's or the pushed one's;
//   - in the end the pushed version serves from all three, and the
//     journal holds no unfinished deploy and no open request.

// appSoakKills is how many moments over a deploy each strategy is killed
// at; stop-first's go to two lanes, alternately, so that they run side by
// side.
const appSoakKills = 20

// appSoakConfig: %[1]s name, %[2]s mirror, %[3]s repository, %[4]s
// history, %[5]s docker_host, %[6]s strategy, %[7]s the web's container
// and health.
const appSoakConfig = `
listen: 127.0.0.1:0
history: %[4]s
docker_host: %[5]s
hooks:
  - source: dockerhub
    token: ` + crashToken + `
registries:
  docker.io:
    mirror: %[2]s
environments:
  production:
    env: {DEBUG: "False"}
deployments:
  - name: %[1]s
    image: %[3]s
    tags: ["glob:v*"]
    environment: production
    strategy: %[6]s
    stop_timeout: 2s
    release: {command: [release]}
    health: {min_uptime: 300ms, timeout: 20s}
    processes:
      worker: {command: [worker]}
      beat: {command: [beat]}
      web: {command: [web], %[7]s}
`

func TestCrashSoakApp(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	bin := liftoffBinary(t)
	eng := testenv.Engine(t)
	reg := eng.Registry(t)
	spread := func(lane, lanes, kills int) []float64 {
		var fs []float64
		for i := lane; i < kills; i += lanes {
			fs = append(fs, float64(i)/float64(kills))
		}
		return fs
	}
	lanes := []struct {
		name       string
		startFirst bool
		moments    []float64
	}{
		{"stop-first-a", false, spread(0, 2, appSoakKills)},
		{"stop-first-b", false, spread(1, 2, appSoakKills)},
		{"start-first", true, spread(0, 1, 8)},
	}
	var cases, failed atomic.Int64
	var wg sync.WaitGroup
	for _, lane := range lanes {
		wg.Go(func() {
			t.Run(lane.name, func(t *testing.T) {
				s := newAppSoak(t, bin, eng, reg, lane.startFirst)
				for _, f := range lane.moments {
					cases.Add(1)
					if !t.Run(fmt.Sprintf("at-%02.0f%%", f*100), func(t *testing.T) { s.run(t, f) }) {
						failed.Add(1)
						return // the state is unknown now: the lane stops here
					}
				}
			})
		})
	}
	wg.Wait()
	t.Logf("app crash soak: %d cases (SIGKILL at %d moments over a deploy of three processes for stop-first, 8 for start-first), %d failed",
		cases.Load(), appSoakKills, failed.Load())
}

// appSoak is a lane under way.
type appSoak struct {
	t       *testing.T // the lane's: what outlives a case (the running liftoff)
	bin     string
	eng     *testenv.Eng
	reg     *testenv.Reg
	proxy   *testenv.HoldProxy
	name    string
	repo    string
	config  string
	db      string
	child   *liftoffProcess
	version int
	digests map[string]int // digest → version
	clean   time.Duration  // a deploy without a crash, 202 to settled
}

func newAppSoak(t *testing.T, bin string, eng *testenv.Eng, reg *testenv.Reg, startFirst bool) *appSoak {
	t.Helper()
	s := &appSoak{t: t, bin: bin, eng: eng, reg: reg, proxy: testenv.NewHoldProxy(t), digests: map[string]int{}}
	s.name = eng.UniqueName(t, "appsoak")
	s.repo = "acme/" + s.name
	dir := t.TempDir()
	s.db = filepath.Join(dir, "liftoff.db")
	s.config = filepath.Join(dir, "liftoff.yaml")
	strategy, web := deployments.StopFirst, ""
	if startFirst {
		strategy = deployments.StartFirst
		network := eng.UniqueName(t, "appsoaknet")
		eng.Network(t, network)
		web = fmt.Sprintf(`container: {networks: [%s], aliases: [web]}, health: {url: "http://{container}:8000/healthz", min_uptime: 300ms, timeout: 20s}`, network)
	} else {
		port := freeTCPPort(t)
		web = fmt.Sprintf(`container: {ports: ["127.0.0.1:%d:8000"]}, health: {url: "http://127.0.0.1:%d/healthz", min_uptime: 300ms, timeout: 20s}`, port, port)
	}
	text := fmt.Sprintf(appSoakConfig, s.name, reg.Host(), s.repo, s.db, s.proxy.Host(), strategy, web)
	if err := os.WriteFile(s.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s.child = startLiftoff(t, bin, s.config)
	s.push(t, 1)
	s.deploy(t, 1)
	s.push(t, 2)
	start := time.Now()
	s.deploy(t, 2)
	s.clean = time.Since(start)
	t.Logf("a clean deploy of the app takes %s", s.clean.Round(time.Millisecond))
	return s
}

func (s *appSoak) units() []string {
	return []string{s.name + "-beat-1", s.name + "-web-1", s.name + "-worker-1"}
}

func (s *appSoak) push(t *testing.T, v int) {
	t.Helper()
	d := s.reg.Push(t, s.repo, fmt.Sprintf("v%d", v), testenv.AppImage{Version: fmt.Sprintf("v%d", v)})
	s.digests[d] = v
}

func (s *appSoak) deploy(t *testing.T, v int) {
	t.Helper()
	crashHook(t, s.child.base, s.repo, fmt.Sprintf("v%d", v), false)
	waitSettled(t, s.db)
	s.serves(t, v)
	s.version = v
}

// oneVersion asserts that exactly the app's containers exist, all running,
// all of one digest, and returns its version.
func (s *appSoak) oneVersion(t *testing.T) int {
	t.Helper()
	var want []string
	for _, u := range s.units() {
		want = append(want, u+" running")
	}
	if got := s.eng.Containers(t, s.name); !slices.Equal(got, want) {
		t.Fatalf("containers %v, want exactly %v", got, want)
	}
	seen := map[string][]string{}
	for _, u := range s.units() {
		d := s.eng.Inspect(t, u).Config.Labels[deploy.LabelDigest]
		seen[d] = append(seen[d], u)
	}
	if len(seen) != 1 {
		t.Fatalf("the processes run %d versions: %v", len(seen), seen)
	}
	for d := range seen {
		return s.digests[d]
	}
	return 0
}

// serves asserts that every process serves version v.
func (s *appSoak) serves(t *testing.T, v int) {
	t.Helper()
	if got := s.oneVersion(t); got != v {
		t.Fatalf("the processes run v%d, want v%d", got, v)
	}
	for _, u := range s.units() {
		if got, _ := s.eng.AppGet(t, u); got != fmt.Sprintf("v%d", v) {
			t.Fatalf("%s serves %q, want v%d", u, got, v)
		}
	}
}

// run is one case: push the next version, kill liftoff at frac of a clean
// deploy, start it again, and check.
func (s *appSoak) run(t *testing.T, frac float64) {
	v := s.version + 1
	s.push(t, v)
	crashHook(t, s.child.base, s.repo, fmt.Sprintf("v%d", v), false)
	time.Sleep(time.Duration(frac * float64(s.clean)))
	s.child.kill(t)
	t.Logf("killed %.0f%% into the deploy; left: %v", frac*100, s.eng.Containers(t, s.name))

	// The resumed deploy's first create (its release container) waits
	// while the state reconcile left is looked at.
	call := s.proxy.Hold(http.MethodPost, pathCreate, 3*time.Second)
	defer s.proxy.Disarm()
	s.child = startLiftoff(s.t, s.bin, s.config)
	defer func() {
		if t.Failed() {
			t.Logf("liftoff's log since the restart:\n%s", s.child.logs.String())
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-call.Held:
			got := s.oneVersion(t)
			t.Logf("after reconcile, before the resumed deploy: every process on v%d", got)
			if got != v-1 {
				t.Errorf("reconcile left v%d while the push of v%d was still to be resumed", got, v)
			}
			goto done
		default:
		}
		if len(unfinished(t, s.db)) == 0 && settledRequests(t, s.db) {
			s.proxy.Disarm()
			got := s.oneVersion(t)
			t.Logf("reconcile finished the deploy: every process on v%d", got)
			goto done
		}
		if time.Now().After(deadline) {
			t.Fatalf("neither a resumed deploy nor a settled journal within 2m")
		}
		time.Sleep(20 * time.Millisecond)
	}
done:
	waitSettled(t, s.db)
	s.serves(t, v)
	if recs := list(t, s.db, s.name); recs[0].Tag != fmt.Sprintf("v%d", v) || recs[0].Outcome != deploy.Succeeded {
		t.Errorf("the newest deploy %+v, want v%d succeeded", recs[0], v)
	}
	s.version = v
}

// settledRequests tells whether the journal holds no open request.
func settledRequests(t *testing.T, path string) bool {
	t.Helper()
	h := openHistory(t, path)
	defer h.Close()
	open, err := h.OpenRequests(t.Context())
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	return len(open) == 0
}
