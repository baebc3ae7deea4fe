package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/testpebble"
)

// demoBuffer is the demo's output, read while it runs.
type demoBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *demoBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *demoBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var curlLine = regexp.MustCompile(`curl --resolve ([^: ]+):(\d+):(\S+) --cacert (\S+) (https://\S+)`)

// The demo prints a curl line that works for a client trusting only the CA
// it names (Pebble's root: the certificate came over ACME), writes a
// standard log line for the request, and stops cleanly when cancelled.
func TestDemo(t *testing.T) {
	var ports []string
	for range 2 {
		p, err := testpebble.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, strconv.Itoa(p))
	}
	logs := filepath.Join(t.TempDir(), "demo-logs")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr demoBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr},
			[]string{"demo", "-http", "127.0.0.1:" + ports[0], "-https", "127.0.0.1:" + ports[1], "-logs", logs})
	}()
	var m []string
	deadline := time.Now().Add(150 * time.Second)
	for m == nil {
		m = curlLine.FindStringSubmatch(stdout.String())
		select {
		case code := <-done:
			t.Fatalf("demo exited with %d before printing its curl line:\n%s\n%s", code, stdout.String(), stderr.String())
		default:
		}
		if m == nil && time.Now().After(deadline) {
			t.Fatalf("no curl line from the demo:\n%s\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	name, port, ip, caFile, url := m[1], m[2], m[3], m[4], m[5]
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != net.JoinHostPort(name, port) {
				return nil, errors.New("not the --resolve address")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort(ip, port))
		},
	}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("the printed curl line fails: %v\n%s", err, stderr.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "hello from app") {
		t.Fatalf("GET %s: %s %q", url, resp.Status, body)
	}
	if issuer := resp.TLS.PeerCertificates[0].Issuer.CommonName; !strings.Contains(issuer, "Pebble") {
		t.Errorf("certificate issued by %q, want Pebble", issuer)
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("demo exited with %d after Ctrl-C:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30s of cancellation")
	}
	files, _ := filepath.Glob(filepath.Join(logs, "*"))
	var found bool
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.IsDir() || strings.HasSuffix(f, "pebble.log") {
			continue
		}
		rc, err := accesslog.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		r := accesslog.NewReader(rc, f)
		for {
			rec, err := r.Next()
			if err != nil {
				break
			}
			if strings.Contains(rec.URIStem, "/hello") {
				found = true
			}
		}
		rc.Close()
	}
	if !found {
		t.Fatalf("no standard log line for /hello under %s (files %v)", logs, files)
	}
}
