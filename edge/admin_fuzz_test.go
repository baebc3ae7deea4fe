package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/rs/zerolog"
)

// FuzzAdminInvalidationBody posts any body to the admin API's
// POST /invalidations, through the whole guarded admin handler of a real
// edge, with and without the token. Never a panic or a 5xx: a body that
// is not the documented JSON is a 400 that says what is expected; without
// the token nothing is created; an accepted invalidation echoes exactly the
// paths that were posted. Seeds: the README's and tests' bodies, and
// broken ones.
func FuzzAdminInvalidationBody(f *testing.F) {
	dir := f.TempDir()
	ca, err := pki.NewAuthority("fuzz CA")
	if err != nil {
		f.Fatal(err)
	}
	leaf, err := ca.Issue(pki.LeafOptions{Names: []string{"www.example.test"}})
	if err != nil {
		f.Fatal(err)
	}
	cert, key, err := leaf.WriteFiles(dir, "viewer")
	if err != nil {
		f.Fatal(err)
	}
	cfg, err := ParseConfig("fuzz.yaml", []byte(fmt.Sprintf(`edge:
  listen: {http: off, https: off}
  certificates: {files: [{cert: %q, key: %q}]}
  admin: {listen: "127.0.0.1:0", token: fuzz-token}
  logs: {dir: %q}
distributions:
  - aliases: [www.example.test]
    origins: [{id: o, domain_name: origin.example.test}]
    default_behavior: {target: o}
`, cert, key, filepath.Join(dir, "logs"))))
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(context.Background(), cfg, Options{Logger: zerolog.Nop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	h := s.adminHandler()
	f.Fuzz(func(t *testing.T, body []byte, withToken bool) {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:9901/invalidations", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if withToken {
			req.Header.Set("Authorization", "Bearer fuzz-token")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("%d %q for body %q", rec.Code, rec.Body, body)
		case !withToken && rec.Code != http.StatusUnauthorized:
			t.Fatalf("without the token: %d %q, want 401", rec.Code, rec.Body)
		case rec.Code == http.StatusCreated:
			var posted struct{ Paths []string }
			if err := json.Unmarshal(body, &posted); err != nil {
				t.Fatalf("accepted a body that is not JSON (%v): %q", err, body)
			}
			var inv struct {
				ID    string   `json:"id"`
				Paths []string `json:"paths"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &inv); err != nil || inv.ID == "" {
				t.Fatalf("201 without an invalidation: %q (%v)", rec.Body, err)
			}
			// A pattern is trimmed and may gain the leading slash CloudFront
			// adds; nothing else changes.
			same := len(inv.Paths) == len(posted.Paths)
			for i := 0; same && i < len(inv.Paths); i++ {
				p := strings.TrimSpace(posted.Paths[i])
				same = inv.Paths[i] == p || inv.Paths[i] == "/"+p
			}
			if !same {
				t.Fatalf("posted %q, the invalidation holds %q", posted.Paths, inv.Paths)
			}
		case rec.Code == http.StatusBadRequest:
			if rec.Body.Len() == 0 {
				t.Fatal("a 400 that says nothing")
			}
		case withToken:
			t.Fatalf("unexpected %d %q", rec.Code, rec.Body)
		}
	})
}
