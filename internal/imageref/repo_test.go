package imageref

import (
	"strings"
	"testing"
)

func TestNormalizeRepo(t *testing.T) {
	tests := []struct{ in, want string }{
		{"acme/web", "docker.io/acme/web"},
		{"docker.io/acme/web", "docker.io/acme/web"},
		{"index.docker.io/acme/web", "docker.io/acme/web"},
		{"registry-1.docker.io/acme/web", "docker.io/acme/web"},
		{"nginx", "docker.io/library/nginx"},
		{"library/nginx", "docker.io/library/nginx"},
		{"docker.io/nginx", "docker.io/library/nginx"},
		{"docker.io/library/nginx", "docker.io/library/nginx"},
		{"registry-1.docker.io/nginx", "docker.io/library/nginx"},
		{"127.0.0.1:5000/x", "127.0.0.1:5000/x"},
		{"localhost/x", "localhost/x"},
		{"localhost:5000/a/b/c", "localhost:5000/a/b/c"},
		{"ghcr.io/acme/web", "ghcr.io/acme/web"},
		{"[::1]:5000/x", "[::1]:5000/x"},
		{"a.b-c/d__e/f-g.h", "a.b-c/d__e/f-g.h"},
	}
	for _, tt := range tests {
		got, err := NormalizeRepo(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeRepo(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{
		"", "Acme/web", "acme/Web", "acme/web:latest", "nginx:1.27", "acme/web@sha256:" + strings.Repeat("a", 64),
		"acme/../web", "acme//web", "/acme/web", "acme/web/", "acme/.web", "acme/web-", "a b", "ACME.io/web:tag",
		strings.Repeat("a", 64), // looks like an image id
		"acme/" + strings.Repeat("w", 251), strings.Repeat("x/", 200) + "y",
	} {
		if got, err := NormalizeRepo(in); err == nil {
			t.Errorf("NormalizeRepo(%q) = %q, want an error", in, got)
		}
	}
}

// FuzzNormalizeRepo: never panics; a result is canonical, stable and a
// valid repository of at most 255 characters.
func FuzzNormalizeRepo(f *testing.F) {
	for _, s := range []string{"acme/web", "nginx", "library/nginx", "127.0.0.1:5000/x", "index.docker.io/a/b",
		"registry-1.docker.io/x", "acme/web:tag", "A/b", "a//b", "[::1]:5000/x", "localhost/x", "docker.io/x", "a/b@sha256:" + strings.Repeat("0", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeRepo(s)
		if err != nil {
			return
		}
		if len(got) > 255 {
			t.Fatalf("%q → %d characters", s, len(got))
		}
		again, err := NormalizeRepo(got)
		if err != nil || again != got {
			t.Fatalf("not stable: %q → %q → %q, %v", s, got, again, err)
		}
		if strings.ContainsAny(got, "@ ") || strings.ToLower(got[strings.IndexByte(got, '/'):]) != got[strings.IndexByte(got, '/'):] {
			t.Fatalf("%q → %q is not a canonical repository", s, got)
		}
	})
}
