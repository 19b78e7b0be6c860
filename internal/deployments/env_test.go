package deployments

import (
	"reflect"
	"strings"
	"testing"
)

// Each layer sets L (the later wins) and a key of its own (all survive).
const layersConfig = `hooks: [{source: dockerhub, token: "${HOOK_TOKEN}"}]
environments:
  production:
    env: {L: environment.env, ENV: environment.env, FROM_VAR: "${SECRET}"}
    env_files: [layers/environment.env]
deployments:
  - name: web
    image: acme/web
    tags: [latest]
    environment: production
    env: {L: deployment.env, DEP: deployment.env}
    env_files: [layers/deployment.env]
    secret_files: {L: layers/secret, SECRET_FILE: layers/secret}
`

func TestEnvLayering(t *testing.T) {
	c := mustParse(t, layersConfig)
	d := c.Deployment("web")
	image := []string{"L=image", "IMAGE=image", "PATH=/usr/bin", "NOEQUALS", "=bad"}
	want := []string{
		"DEP=deployment.env",
		"DEP_FILE=deployment.env_files",
		"ENV=environment.env",
		"ENV_FILE=environment.env_files",
		"FROM_VAR=" + envSecret,
		"IMAGE=image",
		"L=deployment.secret_files",
		"PATH=/usr/bin",
		"SECRET_FILE=deployment.secret_files",
	}
	got, err := c.Env(d, image)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Env =\n%q, %v\nwant\n%q", got, err, want)
	}

	// Drop layers from the top: each time the next one down shows through.
	steps := []struct {
		drop func()
		want string
	}{
		{func() { d.SecretFiles = nil }, "deployment.env_files"},
		{func() { d.EnvFiles = nil }, "deployment.env"},
		{func() { delete(d.Env, "L") }, "environment.env_files"},
		{func() { e := c.Environments["production"]; e.EnvFiles = nil; c.Environments["production"] = e }, "environment.env"},
		{func() { delete(c.Environments["production"].Env, "L") }, "image"},
	}
	for _, s := range steps {
		s.drop()
		got, err := c.Env(d, image)
		if err != nil || !contains(got, "L="+s.want) {
			t.Errorf("after dropping a layer, L should be %q: %q %v", s.want, got, err)
		}
	}
}

func TestSecretKeys(t *testing.T) {
	c := mustParse(t, layersConfig)
	got := c.SecretKeys(c.Deployment("web"))
	want := map[string]bool{"L": true, "ENV_FILE": true, "DEP_FILE": true, "SECRET_FILE": true, "FROM_VAR": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SecretKeys = %v, want %v", got, want)
	}
}

// Files are read at each Env: a changed file applies to the next deploy,
// and a broken one is an error naming the field and the file, not a value.
func TestEnvReadsFilesNow(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "app.env", "A=1\n")
	write(t, dir, "key", "k1\n")
	write(t, dir, "liftoff.yaml", head+`
deployments:
  - name: web
    image: acme/web
    tags: [latest]
    env_files: [app.env]
    secret_files: {KEY: key}
`)
	c, err := Load(dir+"/liftoff.yaml", lookupMap(testEnv()))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Deployment("web")
	write(t, dir, "app.env", "A=2\n")
	write(t, dir, "key", "k2\n")
	if got, err := c.Env(d, nil); err != nil || !reflect.DeepEqual(got, []string{"A=2", "KEY=k2"}) {
		t.Errorf("Env = %q, %v", got, err)
	}
	write(t, dir, "app.env", "A=FILESECRET\nB C=FILESECRET\n")
	remove(t, dir, "key")
	_, err = c.Env(d, nil)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"deployments[0].env_files[0]: ", "app.env: line 2: variable name contains whitespace", "deployments[0].secret_files.KEY: stat "} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
	noLeak(t, err.Error())
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
