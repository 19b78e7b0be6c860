package deployments

import (
	"errors"
	"fmt"
	"strconv"
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
	if p.secrets[path] {
		p.addf(path, "%s (the value comes from ${VAR} and is not shown)", what)
		return
	}
	p.addf(path, "%s: %w", what, err)
}

// addFile reports a file that cannot be used; the error names the file
// and, for env files, the lines, never content. A file name from ${VAR}
// is not shown either.
func (p *problems) addFile(path string, err error) {
	if p.secrets[path] {
		p.addf(path, "the file it names (from ${VAR}, not shown) cannot be used")
		return
	}
	p.add(path, err)
}

// quote shows a value of the config in an error, or hides it when it came
// from ${VAR}.
func (p *problems) quote(path, v string) string {
	if p.secrets[path] {
		return "(value from ${VAR})"
	}
	return strconv.Quote(v)
}

func (p *problems) err() error { return errors.Join(p.list...) }
