package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/testpebble"
)

// check asks the CA's directory for the configured profile: an unknown one
// is refused at its line with the profiles the CA offers; an offered one
// passes.
func TestCheckUnknownProfile(t *testing.T) {
	p := testpebble.Start(t, testpebble.Config{Profiles: map[string]time.Duration{
		"classic": 90 * 24 * time.Hour, "shortlived": 160 * time.Hour,
	}})
	write := func(profile string) string {
		path := filepath.Join(t.TempDir(), "edge.yaml")
		conf := fmt.Sprintf(`edge:
  location: TST1
  certificates:
    acme:
      directory: %s
      trusted_roots: %s
      profile: %s
distributions:
  - aliases: [www.example.test]
    origins: [{id: alb, domain_name: alb.example.test}]
    default_behavior: {target: alb}
`, p.Directory, p.APIRoots, profile)
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	bad := write("sixdays")
	code, _, stderr := runCmd(t, "check", "-config", bad)
	want := bad + `:7: edge.certificates.acme.profile: unknown profile "sixdays": the CA at ` + p.Directory + " offers classic, shortlived"
	if code != exitUsage || !strings.Contains(stderr, want) {
		t.Fatalf("check with an unknown profile: exit %d, stderr %q, want %q", code, stderr, want)
	}
	good := write("shortlived")
	if code, stdout, stderr := runCmd(t, "check", "-config", good); code != exitOK {
		t.Fatalf("check with profile shortlived: exit %d\n%s%s", code, stdout, stderr)
	}
}
