package deployments

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Defaults of the config file.
const (
	DefaultListen      = "127.0.0.1:8080" // this host only; liftoff's image sets 0.0.0.0:8080 (LIFTOFF_LISTEN)
	DefaultHistory     = "liftoff.db"
	DefaultHookRate    = 120
	DefaultStopTimeout = 10 * time.Second

	DefaultHealthTimeout  = 60 * time.Second
	DefaultMinUptime      = 3 * time.Second
	DefaultHealthInterval = 2 * time.Second // Docker's 30s would make every gate slow
	DefaultHealthRetries  = 3

	// DefaultApprovalTimeout is how long a push waits for its approval
	// when environments.<name>.approval.timeout is not given.
	DefaultApprovalTimeout = 24 * time.Hour

	// DefaultReleaseTimeout bounds deployments[].release when its timeout
	// is not given; DefaultBackupTimeout bounds environments.<name>.backup.
	DefaultReleaseTimeout = 10 * time.Minute
	DefaultBackupTimeout  = 30 * time.Minute
)

// maxWalk bounds the nodes the loader visits, alias expansions included, so
// that a small file with nested anchors (a "billion laughs") cannot stall it.
const maxWalk = 1_000_000

// maxDepth bounds how deep the config nests. The deepest field liftoff
// reads is 8 levels down; a path is built at every level, so thousands of
// levels would cost time that grows with the square of the depth.
const maxDepth = 64

// Default returns a config with every default set and nothing deployed.
func Default() *Config { return &Config{Listen: DefaultListen} }

// Load reads, expands (${VAR} via lookup), decodes strictly, defaults and
// validates the file at path. lookup is os.LookupEnv in production; nil
// means an empty environment. All problems are returned joined, each a
// *FieldError naming its field.
func Load(path string, lookup func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(data, filepath.Dir(path), lookup)
	if err != nil {
		return nil, err
	}
	c.path = path
	return c, nil
}

// Parse is Load on bytes; dir resolves relative file paths in the config.
//
// ${VAR} and ${VAR:-default} (default when VAR is unset or empty) are
// expanded in every scalar value, not in keys; $$ is a literal $, and a $
// not followed by { or $ is kept as is (regexps end in $). Values written
// with ${VAR} are treated as secrets.
func Parse(data []byte, dir string, lookup func(string) (string, bool)) (*Config, error) {
	c := Default()
	c.lookup = lookup
	if dir != "" {
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
	}
	c.dir = dir

	l := &loader{
		cfg:     c,
		lines:   map[int]string{},
		secret:  map[string]bool{},
		nulls:   map[string]bool{},
		secLine: map[int]bool{},
		hasExp:  map[*yaml.Node]bool{},
		active:  map[*yaml.Node]bool{},
	}
	l.probs = newProblems(l.secret)
	// Every value a ${VAR} brought in is a secret wherever it lands (an
	// env value, a command's argument): SecretValues lists them. Hook and
	// API tokens are not kept: the config forgets them once hashed.
	expanded := map[string]bool{}
	l.lookup = func(k string) (string, bool) {
		if lookup == nil {
			return "", false
		}
		v, ok := lookup(k)
		if ok && !l.inToken && utf8.RuneCountInString(strings.TrimSpace(v)) >= MinSecretLen {
			expanded[v] = true
		}
		return v, ok
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(l)
	var te *yaml.TypeError
	switch {
	case errors.Is(err, io.EOF) || (err == nil && !l.seen):
		return nil, errors.New("the config file is empty")
	case errors.As(err, &te):
		l.probs.shifted = true
		var paths []string
		for _, m := range te.Errors {
			paths = append(paths, l.addYAMLError(m))
		}
		// Validate has nothing to add about a value yaml could not decode.
		for _, p := range paths {
			l.probs.done[p] = true
		}
	case err != nil:
		// Syntax errors, excessive aliasing: nothing was decoded.
		return nil, err
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		l.probs.addf("", "the file holds more than one YAML document (---): put everything in the first")
	}

	c.secretPaths = l.secret
	c.expanded = slices.Sorted(maps.Keys(expanded))
	c.nullPaths = l.nulls
	c.markSecretEnv()
	c.validate(l.probs)
	if err := l.probs.err(); err != nil {
		return nil, err
	}
	c.forgetTokens()
	return c, nil
}

// loader decodes the file in one pass of the strict decoder: it implements
// yaml's func-style Unmarshaler because that hands it a callback which keeps
// the decoder's KnownFields setting (yaml.Node.Decode would drop it), so it
// can take the raw node tree, expand ${VAR} in place, and then decode it
// strictly, with the original line numbers.
type loader struct {
	cfg    *Config
	lookup func(string) (string, bool)
	seen   bool
	probs  *problems

	inToken bool                // expanding a hook's or an API token's secret
	lines   map[int]string      // line → field path of what is on it
	secret  map[string]bool     // field paths whose value came from ${VAR}
	nulls   map[string]bool     // field paths given with no value (key:, ~, null)
	secLine map[int]bool        // lines holding such values
	hasExp  map[*yaml.Node]bool // nodes at or under which ${VAR} was expanded
	active  map[*yaml.Node]bool // alias targets being walked
	visits  int
	depth   int
}

// nodeCatcher gets the node itself, not a copy, so that expansion changes
// what the decoder decodes next.
type nodeCatcher struct{ n *yaml.Node }

func (c *nodeCatcher) UnmarshalYAML(n *yaml.Node) error {
	c.n = n
	return nil
}

func (l *loader) UnmarshalYAML(unmarshal func(any) error) error {
	l.seen = true
	var root nodeCatcher
	if err := unmarshal(&root); err != nil {
		return err
	}
	if root.n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: the config must be a mapping (listen:, hooks:, deployments:, ...)", root.n.Line)
	}
	if _, err := l.walk(root.n, "", false); err != nil {
		return err
	}
	return unmarshal(l.cfg)
}

// walk expands ${VAR} in the scalars under n and records field paths.
// Under an alias (inAlias) it only marks the paths whose values came from
// ${VAR}: the anchored node was expanded where it was defined, and a
// second expansion would undo $$ escapes.
func (l *loader) walk(n *yaml.Node, path string, inAlias bool) (bool, error) {
	if l.visits++; l.visits > maxWalk {
		return false, errors.New("the config has too many aliases")
	}
	if l.depth++; l.depth > maxDepth {
		return false, fmt.Errorf("line %d: the config nests deeper than %d levels", n.Line, maxDepth)
	}
	defer func() { l.depth-- }()
	exp := false
	switch n.Kind {
	case yaml.ScalarNode:
		if inAlias {
			exp = l.hasExp[n]
			break
		}
		l.line(n.Line, path)
		if strings.Contains(n.Value, "$") {
			exp = l.expandScalar(n, path)
		}
		if n.ShortTag() == "!!null" {
			// Decoded as if the key were absent: Validate refuses it where
			// an empty value is a mistake (release:, backup:).
			l.nulls[path] = true
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var e bool
			var err error
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				// Merged keys land in this mapping: same path.
				if v.Kind == yaml.SequenceNode {
					for _, item := range v.Content {
						ie, err := l.walk(item, path, inAlias)
						if err != nil {
							return false, err
						}
						e = e || ie
					}
				} else if e, err = l.walk(v, path, inAlias); err != nil {
					return false, err
				}
			} else {
				kp := join(path, k.Value)
				if !inAlias {
					l.line(k.Line, kp)
				}
				if e, err = l.walk(v, kp, inAlias); err != nil {
					return false, err
				}
			}
			exp = exp || e
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			e, err := l.walk(item, path+"["+strconv.Itoa(i)+"]", inAlias)
			if err != nil {
				return false, err
			}
			exp = exp || e
		}
	case yaml.AliasNode:
		// An anchor that contains an alias of itself is skipped here (the
		// decoder rejects it); following it would recurse forever.
		if a := n.Alias; a != nil && l.hasExp[a] && !l.active[a] {
			l.active[a] = true
			_, err := l.walk(a, path, true)
			delete(l.active, a)
			if err != nil {
				return false, err
			}
			exp = true
		}
	}
	if exp {
		if !inAlias {
			l.hasExp[n] = true
			if n.Kind == yaml.ScalarNode {
				l.secLine[n.Line] = true
			}
		}
		if n.Kind == yaml.ScalarNode {
			l.secret[path] = true
		}
	}
	return exp, nil
}

// expandScalar expands ${VAR} in n, at path, in place, and tells whether
// it referred to any variable.
func (l *loader) expandScalar(n *yaml.Node, path string) bool {
	l.inToken = tokenPath.MatchString(path)
	v, used, err := expand(n.Value, l.lookup)
	l.inToken = false
	if err != nil {
		l.probs.add(path, err)
		l.probs.done[path] = true
		v = ""
	}
	if v != n.Value {
		n.Value = v
		if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			// A plain scalar is resolved again from its new text, as if
			// written so: ${FLAG} may become a bool, ${T} a duration.
			n.Tag = ""
		}
	}
	return used
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// line remembers which field is on a line, to turn yaml's "line 12: ..."
// into a field path. Where a line holds several fields (flow style), it
// keeps their common parent.
func (l *loader) line(n int, path string) {
	old, ok := l.lines[n]
	if !ok {
		l.lines[n] = path
		return
	}
	i := 0
	for i < len(old) && i < len(path) && old[i] == path[i] {
		i++
	}
	// Back up to a whole path element.
	for i > 0 && !(boundary(old, i) && boundary(path, i)) {
		i--
	}
	l.lines[n] = old[:i]
}

func boundary(s string, i int) bool {
	return i == len(s) || s[i] == '.' || s[i] == '['
}

// tokenPath matches the field paths of the secrets the config forgets
// once hashed (forgetTokens).
var tokenPath = regexp.MustCompile(`^(hooks\[\d+\]\.(token|secret|auth_header)|api_tokens\[\d+\]\.token)$`)

// yamlBackticks matches the value yaml quotes in a type error
// ("cannot unmarshal !!str `abc` into bool").
var yamlBackticks = regexp.MustCompile("`[^`]*`")

// addYAMLError turns one of yaml's "line N: msg" into a FieldError and
// returns its path.
func (l *loader) addYAMLError(m string) string {
	path, msg, where := "", m, ""
	if rest, ok := strings.CutPrefix(m, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				path, msg, where = l.lines[n], tail, " (line "+num+")"
				if l.secLine[n] {
					msg = yamlBackticks.ReplaceAllLiteralString(msg, "(value from ${VAR})")
				}
			}
		}
	}
	if f, ok := strings.CutPrefix(msg, "field "); ok {
		if key, _, ok := strings.Cut(f, " not found in type "); ok {
			if path == key || strings.HasSuffix(path, "."+key) {
				msg = "unknown key"
			} else {
				msg = fmt.Sprintf("unknown key %q", key)
			}
		}
	}
	l.probs.add(path, errors.New(msg+where))
	return path
}

// expand replaces ${VAR} and ${VAR:-default} in s and $$ by $. used tells
// whether s referred to any variable (its value is then a secret). Errors
// name variables, never values.
func expand(s string, lookup func(string) (string, bool)) (out string, used bool, err error) {
	var b strings.Builder
	var unset []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte('$')
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", used, errors.New("unterminated ${ (write $$ for a literal $)")
		}
		name, def, hasDef := strings.Cut(s[i+2:i+2+end], ":-")
		if !validEnvKey(name) {
			return "", used, errors.New("${...} needs a variable name [A-Za-z_][A-Za-z0-9_]* and optionally :-default (write $$ for a literal $)")
		}
		used = true
		var v string
		var ok bool
		if lookup != nil {
			v, ok = lookup(name)
		}
		switch {
		case ok && (v != "" || !hasDef):
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			unset = append(unset, "${"+name+"}")
		}
		i += 2 + end
	}
	switch len(unset) {
	case 0:
		return b.String(), used, nil
	case 1:
		return "", used, fmt.Errorf("%s is not set", unset[0])
	default:
		return "", used, fmt.Errorf("%s are not set", strings.Join(unset, ", "))
	}
}

// markSecretEnv carries the ${VAR} marks of env values over from field
// paths to the decoded maps, where SecretKeys and Env look for them.
func (c *Config) markSecretEnv() {
	for name, e := range c.Environments {
		e.secretEnv = secretKeysAt(c.secretPaths, "environments."+name+".env", e.Env)
		if e.Backup != nil {
			e.Backup.secretEnv = secretKeysAt(c.secretPaths, "environments."+name+".backup.env", e.Backup.Env)
		}
		c.Environments[name] = e
	}
	for i := range c.Deployments {
		d := &c.Deployments[i]
		d.secretEnv = secretKeysAt(c.secretPaths, "deployments["+strconv.Itoa(i)+"].env", d.Env)
	}
}

func secretKeysAt(paths map[string]bool, prefix string, env map[string]string) map[string]bool {
	var m map[string]bool
	for k := range env {
		if paths[prefix+"."+k] {
			if m == nil {
				m = map[string]bool{}
			}
			m[k] = true
		}
	}
	return m
}
