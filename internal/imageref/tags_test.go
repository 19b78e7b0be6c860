package imageref

import (
	"strings"
	"testing"
)

func TestTagRules(t *testing.T) {
	tests := []struct {
		rule string
		yes  []string
		no   []string
	}{
		{"latest", []string{"latest"}, []string{"Latest", "latest2", "v1"}},
		{"glob:release-*", []string{"release-1", "release-", "release-2024.01"}, []string{"release", "xrelease-1", "v1"}},
		{"glob:v?.*", []string{"v1.2", "v9.x"}, []string{"v10.2", "v1"}},
		{"glob:[0-9]*", []string{"1", "2abc"}, []string{"a1"}},
		{"semver:^1.4", []string{"1.4.0", "v1.4.2", "1.9.9"}, []string{"1.3.9", "2.0.0", "1.4", "v1", "1.5.0-rc1", "latest", "V1.4.2", "vv1.4.2"}},
		{"semver:^1", []string{"1.0.0", "v1.99.0"}, []string{"0.9.0", "2.0.0", "1"}},
		{"semver:>=1.0.0-0 <2", []string{"1.5.0-rc1", "1.0.0"}, []string{"2.0.0", "0.9.0"}},
		{"semver:~2.1", []string{"2.1.0", "2.1.7"}, []string{"2.2.0"}},
		{"semver:*", []string{"0.0.1", "v3.2.1"}, []string{"latest", "3.2"}},
		{"regexp:^v[0-9]+$", []string{"v1", "v42"}, []string{"v1.2", "xv1", "v"}},
		{"regexp:rc", []string{"1.0-rc1", "rc"}, []string{"1.0"}}, // anchored as written: not at all
		{"regexp:.*", []string{"anything"}, []string{"sha256-" + strings.Repeat("a", 64), "x.sig", "x.att"}},
		{"glob:*", []string{"a"}, []string{"sha256-" + strings.Repeat("0", 64) + ".sbom", "v1.sig"}},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			for _, tag := range tt.yes {
				if ok, err := MatchTag(tt.rule, tag); err != nil || !ok {
					t.Errorf("%s should match %q (err %v)", tt.rule, tag, err)
				}
			}
			for _, tag := range tt.no {
				if ok, err := MatchTag(tt.rule, tag); err != nil || ok {
					t.Errorf("%s should not match %q (err %v)", tt.rule, tag, err)
				}
			}
		})
	}
}

func TestTagRuleErrors(t *testing.T) {
	for _, rule := range []string{"", "semver:^foo", "semver:", "glob:[", "regexp:(", "re:x", "bad tag", "-x", strings.Repeat("a", 129)} {
		if _, err := MatchTag(rule, "x"); err == nil {
			t.Errorf("rule %q: no error", rule)
		}
	}
}

func TestValidateTag(t *testing.T) {
	for _, tag := range []string{"latest", "v1.4.2", "_x", "1", "A-b_c.d", strings.Repeat("a", 128), "sha256-" + strings.Repeat("a", 64)} {
		if err := ValidateTag(tag); err != nil {
			t.Errorf("ValidateTag(%q) = %v", tag, err)
		}
	}
	for _, tag := range []string{"", ".x", "-x", "a/b", "a:b", "a b", "é", "a@b", strings.Repeat("a", 129)} {
		if err := ValidateTag(tag); err == nil {
			t.Errorf("ValidateTag(%q) = nil", tag)
		}
	}
	if err := ValidateTag(strings.Repeat("a", 5000)); err == nil || len(err.Error()) > 100 {
		t.Errorf("a long tag is not echoed: %v", err)
	}
}

func TestIsSignatureTag(t *testing.T) {
	h := strings.Repeat("0123456789abcdef", 4)
	for _, tag := range []string{"sha256-" + h, "sha256-" + h + ".sig", "sha256-" + h + ".att", "sha256-" + h + ".sbom", "v1.sig", "x.att"} {
		if !IsSignatureTag(tag) {
			t.Errorf("IsSignatureTag(%q) = false", tag)
		}
	}
	for _, tag := range []string{"latest", "sha256-" + h[:63], "sha256-" + strings.ToUpper(h), "sha256-" + h + "x", "sha512-" + h, "sig", "v1.signed", "attic"} {
		if IsSignatureTag(tag) {
			t.Errorf("IsSignatureTag(%q) = true", tag)
		}
	}
}

func TestTagRuleHighest(t *testing.T) {
	tags := []string{"1.9.3", "2.0.0", "1.11.0-rc1", "latest", "1.10.0", "v1.2.0", "1.10", "sha256-" + strings.Repeat("a", 64)}
	for rule, want := range map[string]string{"semver:^1": "1.10.0", "semver:>=1.11.0-rc0 <2": "1.11.0-rc1", "semver:^3": "", "glob:*": ""} {
		r, err := ParseTagRule(rule)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Highest(tags); got != want {
			t.Errorf("%s: Highest = %q, want %q", rule, got, want)
		}
	}
	r, _ := ParseTagRule("glob:release-*")
	if !r.Match("release-2") || r.Match("other") || r.Match("release-x.sig") {
		t.Error("glob Match")
	}
	if tag, ok := r.Exact(); ok {
		t.Errorf("glob is exact %q", tag)
	}
}

// FuzzTagRule: parsing a rule and matching a tag never panic; a rule that
// parses matches only valid, non-signature tags; an exact rule matches
// exactly itself.
func FuzzTagRule(f *testing.F) {
	for _, s := range [][2]string{
		{"latest", "latest"}, {"glob:release-*", "release-1"}, {"semver:^1.4", "v1.4.2"}, {"semver:>=1.0.0-0", "1.0.0-rc.1"},
		{"regexp:^v[0-9]+$", "v1"}, {"glob:[", "x"}, {"semver:^x", "1.0.0"}, {"regexp:(", ""}, {"glob:*", "sha256-" + strings.Repeat("a", 64)},
		{"semver:~1.2.3 || ^2", "2.0.0"}, {"glob:\\*", "*"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, rule, tag string) {
		ok, err := MatchTag(rule, tag)
		if err != nil {
			return
		}
		if ok && (ValidateTag(tag) != nil || IsSignatureTag(tag)) {
			t.Fatalf("%q matched invalid or signature tag %q", rule, tag)
		}
		if !strings.Contains(rule, ":") && ok != (rule == tag) {
			t.Fatalf("exact rule %q on %q = %v", rule, tag, ok)
		}
	})
}
