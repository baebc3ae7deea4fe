package edge

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// /readyz holds back traffic until every alias served over HTTPS has a
// certificate: at once with certificate files, never while the ACME CA
// cannot be reached.
func TestReadyz(t *testing.T) {
	e := newTestEnv(t)
	addr, _ := e.httpsOrigin("127.0.0.2", hello("app"), "app.example.test")
	distribution := fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app}`, addr, e.caFile)
	admin := "\n  admin: {listen: \"127.0.0.1:0\"}"
	acme := admin + "\n  resolver: \"127.0.0.1:1\""
	files := e.edgeConfig(admin, distribution)
	unreachableCA := strings.Replace(e.edgeConfig(acme, distribution),
		fmt.Sprintf("    files: [{cert: %q, key: %q}]", e.cert, e.key),
		fmt.Sprintf("    acme: {directory: \"https://127.0.0.1:1/dir\"}\n    storage: %q", "file://"+filepath.Join(e.dir, "storage")), 1)
	if unreachableCA == e.edgeConfig(acme, distribution) {
		t.Fatal("the ACME config was not substituted")
	}
	for _, tt := range []struct {
		name, config string
		status       int
		body         string
	}{
		{"certificate files", files, http.StatusOK, "ready\n"},
		{"ACME CA unreachable", unreachableCA, http.StatusServiceUnavailable, "waiting for certificates: api.example.test, www.example.test\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			re := e.startEdge(tt.config)
			resp, err := http.Get("http://" + re.Addr("admin") + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(body) != tt.body {
				t.Errorf("/readyz: %d %q, want %d %q", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
}
