package daemon_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// The files under contrib/ that query liftoff's metrics, from this
// package's directory.
var (
	dashboardFile = filepath.Join("..", "..", "contrib", "grafana", "liftoff.json")
	alertsFile    = filepath.Join("..", "..", "contrib", "prometheus", "alerts.yml")
)

// TestContribQueriesUseRealMetrics runs liftoff, makes one deploy (so that
// the histograms and the labelled series exist), lints its /metrics with
// promlint, and checks that every liftoff_* metric and label that the
// Grafana dashboard and the alerting rules use is one liftoff exposes.
func TestContribQueriesUseRealMetrics(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemon(t, webYAML("{min_uptime: 500ms}", "", ""))
	d.pushImage("staging", testenv.AppImage{Version: "v1"})
	d.deployOK("staging")
	text := d.get("/metrics")

	t.Run("promlint", func(t *testing.T) {
		problems, err := promlint.New(strings.NewReader(text)).Lint()
		if err != nil {
			t.Fatalf("lint /metrics: %v", err)
		}
		for _, p := range problems {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	})

	known := exposedMetrics(t, text, d.app.Registry())
	// The series a deploy makes must be there: the text is what it should be.
	for _, name := range []string{"liftoff_deploy_duration_seconds", "liftoff_deploy_phase_duration_seconds", "liftoff_deployed_info", "liftoff_deploys_total"} {
		if !known[name].inText {
			t.Errorf("/metrics lacks %s after a deploy", name)
		}
	}

	t.Run("grafana", func(t *testing.T) {
		exprs := dashboardExprs(t, dashboardFile)
		if len(exprs) < 10 {
			t.Fatalf("only %d queries found in %s", len(exprs), dashboardFile)
		}
		for _, p := range checkExprs(exprs, known) {
			t.Error(p)
		}
	})
	t.Run("alerts", func(t *testing.T) {
		exprs := alertExprs(t, alertsFile)
		for _, p := range checkExprs(exprs, known) {
			t.Error(p)
		}
	})
}

// TestAlertRulesWithPromtool checks the rules with Prometheus's own
// promtool, and runs their unit tests (contrib/prometheus/alerts_test.yml:
// each alert fires when it should and not otherwise), where promtool is
// installed (Debian's prometheus package has it).
func TestAlertRulesWithPromtool(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("LIFTOFF_REQUIRE_DOCKER") == "1" {
			t.Fatal("no promtool on PATH: .ci/run installs it (Debian: apt install prometheus)")
		}
		t.Skip("SKIPPED: no promtool on PATH (Debian: apt install prometheus); the alerting rules are not checked by Prometheus itself")
	}
	tests := filepath.Join(filepath.Dir(alertsFile), "alerts_test.yml")
	for _, args := range [][]string{{"check", "rules", alertsFile}, {"test", "rules", tests}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestContribCheckCatchesMistakes feeds checkExprs queries naming a metric,
// a histogram suffix and labels that do not exist: each must be reported.
func TestContribCheckCatchesMistakes(t *testing.T) {
	known := map[string]metricInfo{
		"liftoff_deploys_total":                 {typ: "counter", inText: true, labels: set("deployment", "environment", "outcome")},
		"liftoff_deploy_phase_duration_seconds": {typ: "histogram", inText: true, labels: set("phase")},
		"liftoff_deployment_down":               {labels: set("deployment")}, // registered, no series yet
	}
	for _, tc := range []struct {
		expr string
		want string // "" for no problem
	}{
		{`sum by (outcome) (rate(liftoff_deploys_total{deployment=~"$deployment"}[5m]))`, ""},
		{`histogram_quantile(0.9, sum by (le, phase) (rate(liftoff_deploy_phase_duration_seconds_bucket[5m])))`, ""},
		{`max by (instance, deployment) (liftoff_deployment_down) == 1`, ""},
		{`sum(rate(liftoff_deploys_totl[5m]))`, "liftoff_deploys_totl"},
		{`sum(rate(liftoff_deploys_total_bucket[5m]))`, "liftoff_deploys_total_bucket"},
		{`sum by (phase) (rate(liftoff_deploys_total[5m]))`, `label "phase"`},
		{`sum(rate(liftoff_deploys_total{reason="x"}[5m]))`, `label "reason"`},
		{`sum by (le) (rate(liftoff_deploys_total[5m]))`, `label "le"`},
		{`sum by (deployment) (liftoff_deploy_phase_duration_seconds_count)`, `label "deployment"`},
		{`label_values(liftoff_deploys_total, phase)`, `label "phase"`},
		{`vector(1)`, "no liftoff_ metric"},
		{`up{job="liftoff"} == 0`, ""},
		{`label_values(liftoff_deploys_total{instance=~"$instance", environment=~"$environment"}, deployment)`, ""},
	} {
		problems := checkExprs([]query{{where: "test", expr: tc.expr}}, known)
		switch {
		case tc.want == "" && len(problems) > 0:
			t.Errorf("%s: unexpected problems %q", tc.expr, problems)
		case tc.want != "" && !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }):
			t.Errorf("%s: problems %q, want one about %s", tc.expr, problems, tc.want)
		}
	}
}

func set(s ...string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, v := range s {
		m[v] = true
	}
	return m
}

// metricInfo is what liftoff exposes of one metric family.
type metricInfo struct {
	typ    string          // counter, gauge, histogram, ... ("" if not in the text)
	inText bool            // has a # TYPE line in /metrics
	labels map[string]bool // its label names, from its descriptor
}

// exposedMetrics returns liftoff's metric families: those in the metrics
// text, and those registered on reg with no series yet (a labelled metric
// such as liftoff_deployment_down has none until a deployment is down, and
// so no line in the text). Labels come from the registered descriptors, so
// they are known for both.
func exposedMetrics(t *testing.T, text string, reg prometheus.Collector) map[string]metricInfo {
	t.Helper()
	known := map[string]metricInfo{}
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			known[f[2]] = metricInfo{typ: f[3], inText: true, labels: map[string]bool{}}
		}
	}
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	for desc := range ch {
		name, labels, err := describe(desc)
		if err != nil {
			t.Fatalf("descriptor %s: %v", desc, err)
		}
		info := known[name]
		if info.labels == nil {
			info.labels = map[string]bool{}
		}
		maps.Copy(info.labels, labels)
		known[name] = info
	}
	return known
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// describe returns a descriptor's metric name and label names. A Desc
// does not export them: a constant metric made from it, with as many
// label values as it has variable labels, writes them all.
func describe(desc *prometheus.Desc) (string, map[string]bool, error) {
	m := descName.FindStringSubmatch(desc.String())
	if m == nil {
		return "", nil, fmt.Errorf("no fqName in %s", desc)
	}
	for n := 0; n <= 16; n++ {
		metric, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, 0, make([]string, n)...)
		if err != nil {
			continue // another count of label values
		}
		var pb dto.Metric
		if err := metric.Write(&pb); err != nil {
			return "", nil, err
		}
		labels := map[string]bool{}
		for _, lp := range pb.GetLabel() {
			labels[lp.GetName()] = true
		}
		return m[1], labels, nil
	}
	return "", nil, fmt.Errorf("more than 16 labels")
}

// query is one PromQL expression of a contrib file, and where it is.
type query struct {
	where, expr string
	legend      string // a Grafana legend format: its {{label}}s must exist too
}

// dashboardExprs returns every query of the dashboard (panels' targets and
// template variables). It also checks what makes the file importable
// anywhere: valid JSON and no data source but the ${datasource} variable.
func dashboardExprs(t *testing.T, path string) []query {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var vars []string
	tpl, _ := dash["templating"].(map[string]any)
	list, _ := tpl["list"].([]any)
	for _, v := range list {
		if v, ok := v.(map[string]any); ok {
			vars = append(vars, fmt.Sprint(v["type"], ":", v["name"]))
		}
	}
	if !slices.Contains(vars, "datasource:datasource") {
		t.Errorf("%s: no data source variable named datasource among %v", path, vars)
	}

	var out []query
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				where = path + ": " + title
			} else if name, ok := v["name"].(string); ok {
				where = path + ": variable " + name
			}
			if ds, ok := v["datasource"].(map[string]any); ok {
				if uid := ds["uid"]; uid != "${datasource}" && uid != "-- Grafana --" {
					t.Errorf("%s: data source uid %v; want ${datasource}, no uid of one Grafana", where, uid)
				}
			}
			if expr, ok := v["expr"].(string); ok {
				legend, _ := v["legendFormat"].(string)
				out = append(out, query{where: where, expr: expr, legend: legend})
			}
			if q, ok := v["definition"].(string); ok && v["type"] == "query" {
				out = append(out, query{where: where, expr: q})
			}
			for _, k := range slices.Sorted(maps.Keys(v)) {
				walk(where, v[k])
			}
		case []any:
			for _, e := range v {
				walk(where, e)
			}
		}
	}
	walk(path, dash)
	return out
}

// ruleFile is the Prometheus rules format, decoded strictly: a misspelt
// key fails the test rather than being ignored by the test and refused by
// Prometheus.
type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func alertExprs(t *testing.T, path string) []query {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rf ruleFile
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []query
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("%s: a group without a name or rules", path)
		}
		for _, r := range g.Rules {
			where := fmt.Sprintf("%s: %s", path, r.Alert)
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: every rule needs alert, expr, labels.severity and annotations.summary", where)
			}
			out = append(out, query{where: where, expr: r.Expr})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no rules", path)
	}
	return out
}

var (
	metricRef   = regexp.MustCompile(`\bliftoff_[a-zA-Z0-9_]+`)
	grouping    = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	matcher     = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
	labelValues = regexp.MustCompile(`label_values\(\s*(liftoff_[a-zA-Z0-9_]+)\s*(?:\{[^}]*\})?\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)`)
	legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	// scrapeLabels are added by Prometheus to every series it scrapes.
	scrapeLabels = set("instance", "job")
)

// checkExprs returns a problem for each liftoff_ metric an expression
// names that liftoff does not expose, and for each label used in a
// selector, a grouping clause (by, without, on, ignoring, group_left,
// group_right), a label_values() or a legend that the metrics it concerns
// do not have. A histogram's _bucket, _sum and _count name the histogram;
// le exists on its _bucket only. Grouping and legend labels must exist on
// every liftoff metric of the expression: the contrib files combine no
// two metrics in one aggregation.
func checkExprs(queries []query, known map[string]metricInfo) []string {
	var problems []string
	for _, q := range queries {
		expr := stripStrings(q.expr)
		idx := metricRef.FindAllStringIndex(expr, -1)
		if len(idx) == 0 && !strings.HasPrefix(expr, "up{") { // Prometheus's own up: liftoff not scraped
			problems = append(problems, fmt.Sprintf("%s: no liftoff_ metric in %q", q.where, q.expr))
			continue
		}
		var all []string // labels of every metric of the expression
		labelsOf := map[string]map[string]bool{}
		for _, ix := range idx {
			name := expr[ix[0]:ix[1]]
			labels, ok := metricLabels(name, known)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: %s is not a metric liftoff exposes (in %q)", q.where, name, q.expr))
				continue
			}
			labelsOf[name] = labels
			// The selector right after the name: {label="...", ...}.
			if rest := expr[ix[1]:]; strings.HasPrefix(rest, "{") {
				sel := rest[:strings.IndexByte(rest, '}')+1]
				for _, m := range matcher.FindAllStringSubmatch(q.expr[ix[1]:ix[1]+len(sel)], -1) {
					if !labels[m[1]] {
						problems = append(problems, fmt.Sprintf("%s: %s has no label %q (in %q)", q.where, name, m[1], q.expr))
					}
				}
			}
		}
		for _, m := range grouping.FindAllStringSubmatch(expr, -1) {
			for l := range strings.SplitSeq(m[1], ",") {
				if l = strings.TrimSpace(l); l != "" {
					all = append(all, l)
				}
			}
		}
		for _, m := range legendLabel.FindAllStringSubmatch(q.legend, -1) {
			all = append(all, m[1])
		}
		for _, l := range all {
			for _, name := range slices.Sorted(maps.Keys(labelsOf)) {
				if !labelsOf[name][l] {
					problems = append(problems, fmt.Sprintf("%s: %s has no label %q (in %q)", q.where, name, l, q.expr))
				}
			}
		}
		for _, m := range labelValues.FindAllStringSubmatch(expr, -1) {
			if labels, ok := labelsOf[m[1]]; ok && !labels[m[2]] {
				problems = append(problems, fmt.Sprintf("%s: %s has no label %q (in %q)", q.where, m[1], m[2], q.expr))
			}
		}
	}
	return problems
}

// metricLabels returns the labels a series named name may have, and
// whether liftoff exposes such a series at all.
func metricLabels(name string, known map[string]metricInfo) (map[string]bool, bool) {
	labels := maps.Clone(scrapeLabels)
	if info, ok := known[name]; ok {
		maps.Copy(labels, info.labels)
		return labels, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if info := known[base]; ok && info.typ == "histogram" {
			maps.Copy(labels, info.labels)
			if suffix == "_bucket" {
				labels["le"] = true
			}
			return labels, true
		}
	}
	return nil, false
}

var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// stripStrings blanks the insides of the string literals of expr, keeping
// its length, so that label values are never taken for metric names.
func stripStrings(expr string) string {
	return quoted.ReplaceAllStringFunc(expr, func(s string) string {
		return `"` + strings.Repeat(" ", len(s)-2) + `"`
	})
}
