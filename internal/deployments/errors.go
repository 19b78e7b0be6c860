package deployments

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrPolicy marks an environment that breaks its policy (require, forbid,
// forbid_patterns): the deploy must be refused, not retried.
var ErrPolicy = errors.New("policy violation")

// FieldError is one problem of a config file, located by its field path
// ("deployments[1].tags[0]"). Load, Parse and Validate return these joined
// with errors.Join.
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

func (e *FieldError) Unwrap() error { return e.Err }

// problems collects every error of a config so that one run of `liftoff
// validate` shows all of them, not the first.
type problems struct {
	list []error
	seen map[string]bool
	// done holds paths that already have an error which makes any further
	// one redundant (an unset ${VAR} need not also be "too short").
	done    map[string]bool
	secrets map[string]bool
	// shifted is set when yaml could not decode an item of a sequence:
	// it drops that item and moves the later ones up, so a path may name
	// an item written at a later index.
	shifted bool
}

func newProblems(secrets map[string]bool) *problems {
	return &problems{seen: map[string]bool{}, done: map[string]bool{}, secrets: secrets}
}

func (p *problems) add(path string, err error) {
	if path != "" && p.done[path] {
		return
	}
	fe := &FieldError{Path: path, Err: err}
	if s := fe.Error(); !p.seen[s] {
		p.seen[s] = true
		p.list = append(p.list, fe)
	}
}

func (p *problems) addf(path, format string, args ...any) {
	p.add(path, fmt.Errorf(format, args...))
}

// addLib reports err of a library that may echo the value it was given
// (reference, semver, regexp, nat): when the value came from ${VAR}, only
// what is not secret is said.
func (p *problems) addLib(path, what string, err error) {
	if p.secret(path) {
		p.addf(path, "%s (the value comes from ${VAR} and is not shown)", what)
		return
	}
	p.addf(path, "%s: %w", what, err)
}

// addFile reports a file that cannot be used; the error names the file
// and, for env files, the lines, never content. A file name from ${VAR}
// is not shown either.
func (p *problems) addFile(path string, err error) {
	if p.secret(path) {
		p.addf(path, "the file it names (from ${VAR}, not shown) cannot be used")
		return
	}
	p.add(path, err)
}

// quote shows a value of the config in an error, or hides it when it came
// from ${VAR}.
func (p *problems) quote(path, v string) string {
	if p.secret(path) {
		return "(value from ${VAR})"
	}
	return strconv.Quote(v)
}

// secret tells whether the value at path came from ${VAR}. After a
// shift, an item is taken for secret when a secret was written at the
// same place with indices no lower than its own.
func (p *problems) secret(path string) bool {
	if p.secrets[path] {
		return true
	}
	if !p.shifted {
		return false
	}
	shape, idx := splitIndices(path)
	for s := range p.secrets {
		sShape, sIdx := splitIndices(s)
		if sShape != shape || len(sIdx) != len(idx) {
			continue
		}
		below := true
		for i := range idx {
			if idx[i] > sIdx[i] {
				below = false
				break
			}
		}
		if below {
			return true
		}
	}
	return false
}

// splitIndices turns "a[2].b[0]" into "a[].b[]" and [2 0].
func splitIndices(path string) (string, []int) {
	var shape strings.Builder
	var idx []int
	for {
		i := strings.IndexByte(path, '[')
		if i < 0 {
			shape.WriteString(path)
			return shape.String(), idx
		}
		j := strings.IndexByte(path[i:], ']')
		if j < 0 {
			shape.WriteString(path)
			return shape.String(), idx
		}
		n, err := strconv.Atoi(path[i+1 : i+j])
		if err != nil {
			shape.WriteString(path[:i+j+1])
		} else {
			shape.WriteString(path[:i] + "[]")
			idx = append(idx, n)
		}
		path = path[i+j+1:]
	}
}

func (p *problems) err() error { return errors.Join(p.list...) }
