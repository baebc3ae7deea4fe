package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// viewerName is the name the load generators connect to: wrk and h2load
// send the URL's host as SNI and resolve it themselves, and localhost
// resolves to loopback without touching /etc/hosts.
const viewerName = "localhost"

// originName is the origin's name: sent as SNI and verified against its
// certificate by all three servers.
const originName = "origin.test"

// layout is the shared set-up: one PKI, the files, the ports.
type layout struct {
	Dir        string // everything lives under it
	Root       string // the origin's static files
	CA         string // PEM of the authority that signed both certificates
	ViewerCert string
	ViewerKey  string
	OriginCert string
	OriginKey  string
	LogDir     string
	User       string // "user root;" for nginx when run as root (its workers would drop to nobody)

	OriginPort, StatusPort             int
	NginxPort, CaddyPort, EdgegatePort int
	NginxCacheDir, CaddyDataDir        string
}

// server is a running server process.
type server struct {
	name string
	cmd  *exec.Cmd
	port int
	done chan error
	// hitHeader and hitValue tell a cache hit from the response headers.
	hitHeader, hitValue string
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs bin pinned to core with extra environment, its output in
// logFile, and waits until its port answers TCP.
func start(ctx context.Context, name string, core int, port int, logFile string, env []string, bin string, args ...string) (*server, error) {
	out, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("taskset", append([]string{"-c", strconv.Itoa(core), bin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &server{name: name, cmd: cmd, port: port, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); out.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case err := <-s.done:
			log, _ := os.ReadFile(logFile)
			return nil, fmt.Errorf("%s exited before listening on %d: %v\n%s", name, port, err, log)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s: port %d not listening after 60s (see %s)", name, port, logFile)
		}
	}
}

// stop asks the server to finish (SIGTERM to its process group) and kills
// it after 10 seconds.
func (s *server) stop() {
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
}

// pids is the server's process and its descendants (nginx's workers).
func (s *server) pids() []int {
	root := s.cmd.Process.Pid
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		children[st.ppid] = append(children[st.ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

type procStat struct {
	ppid       int
	cpuTicks   int64 // utime + stime
	rssPages   int64
	childTicks int64 // cutime + cstime (reaped workers)
}

// readStat reads /proc/PID/stat; the command name may hold spaces, so
// fields are counted after its closing parenthesis.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, errors.New("stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("stat: %d fields", len(f)+2)
	}
	num := func(n int) int64 { v, _ := strconv.ParseInt(f[n-3], 10, 64); return v }
	return procStat{ppid: int(num(4)), cpuTicks: num(14) + num(15), childTicks: num(16) + num(17), rssPages: num(24)}, nil
}

// usage is the CPU ticks and resident bytes of the server's processes now.
func (s *server) usage() (ticks, rss int64) {
	page := int64(os.Getpagesize())
	for _, pid := range s.pids() {
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		ticks += st.cpuTicks + st.childTicks
		rss += st.rssPages * page
	}
	return ticks, rss
}

// writes counts the write system calls (write, writev, sendmsg...) the
// server's processes have made, from /proc/PID/io: with the requests
// served, how well a server coalesces its output. Processes that cannot
// be read count nothing.
func (s *server) writes() int64 {
	var n int64
	for _, pid := range s.pids() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
		if err != nil {
			continue
		}
		n += parseSyscw(string(b))
	}
	return n
}

// parseSyscw reads the syscw line of /proc/PID/io; 0 if there is none.
func parseSyscw(s string) int64 {
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// client is a viewer that trusts the bench PKI, for checks.
func (l *layout) client() (*http.Client, error) {
	ca, err := os.ReadFile(l.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s: no certificate", l.CA)
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: viewerName},
			DisableKeepAlives: true,
		},
	}, nil
}

// check fetches path from s twice and verifies what the test relies on: a
// 200 with the expected body size, and for hit tests a hit the second time,
// for miss tests no hit.
func (l *layout) check(ctx context.Context, c *http.Client, s *server, path string, size int, wantHit, wantMiss bool) error {
	url := fmt.Sprintf("https://%s:%d%s", viewerName, s.port, path)
	var hdr http.Header
	for range 2 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", s.name, path, err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: body: %w", s.name, path, err)
		}
		if resp.StatusCode != http.StatusOK || n != int64(size) {
			return fmt.Errorf("%s %s: %s with %d bytes, want 200 with %d", s.name, path, resp.Status, n, size)
		}
		hdr = resp.Header
	}
	got := hdr.Get(s.hitHeader)
	hit := s.hitHeader != "" && strings.HasPrefix(got, s.hitValue)
	switch {
	case wantHit && !hit:
		return fmt.Errorf("%s %s: second fetch is not a cache hit (%s: %q)", s.name, path, s.hitHeader, got)
	case wantMiss && hit:
		return fmt.Errorf("%s %s: no-store response served as a hit (%s: %q)", s.name, path, s.hitHeader, got)
	}
	return nil
}

// originCounts reads the origin nginx's stub_status: connections accepted
// and requests served so far.
func (l *layout) originCounts(ctx context.Context) (accepts, requests int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/status", l.StatusPort), nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("origin status: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, 0, fmt.Errorf("origin status: %w", err)
	}
	return parseStubStatus(string(b))
}

// parseStubStatus reads nginx's stub_status page:
//
//	Active connections: 1
//	server accepts handled requests
//	 10 10 20
//	Reading: 0 Writing: 1 Waiting: 0
func parseStubStatus(s string) (accepts, requests int64, err error) {
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		if strings.TrimSpace(line) == "server accepts handled requests" && i+1 < len(lines) {
			f := strings.Fields(lines[i+1])
			if len(f) != 3 {
				break
			}
			a, err1 := strconv.ParseInt(f[0], 10, 64)
			r, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				break
			}
			return a, r, nil
		}
	}
	return 0, 0, fmt.Errorf("origin status: not an nginx stub_status page: %q", s)
}

// writeTemplate renders text with l into path.
func writeTemplate(path, text string, l *layout) error {
	t, err := template.New(filepath.Base(path)).Option("missingkey=error").Parse(text)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, l); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// The origin: nginx serving static files over HTTPS as origin.test, with
// a plain-HTTP stub_status to count its connections.
const originConf = `{{.User}}
worker_processes 1;
daemon off;
pid {{.Dir}}/origin.pid;
error_log {{.LogDir}}/origin-error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path {{.Dir}}/origin-tmp/body;
	proxy_temp_path {{.Dir}}/origin-tmp/proxy;
	fastcgi_temp_path {{.Dir}}/origin-tmp/fastcgi;
	uwsgi_temp_path {{.Dir}}/origin-tmp/uwsgi;
	scgi_temp_path {{.Dir}}/origin-tmp/scgi;
	default_type application/octet-stream;
	keepalive_requests 1000000;
	keepalive_timeout 300s;
	server {
		listen 127.0.0.1:{{.OriginPort}} ssl;
		server_name {{.OriginName}};
		ssl_certificate {{.OriginCert}};
		ssl_certificate_key {{.OriginKey}};
		root {{.Root}};
		location /static/  { add_header Cache-Control "public, max-age=3600"; }
		location /pass/    { alias {{.Root}}/static/; add_header Cache-Control "public, max-age=3600"; }
		location /nostore/ { alias {{.Root}}/static/; add_header Cache-Control "no-store"; }
	}
	server {
		listen 127.0.0.1:{{.StatusPort}};
		location = /status { stub_status; }
	}
}
`

// nginx as the edge: a proxy cache in front of the origin, verified by
// name, keep-alive to it, access log buffered like edgegate's.
const nginxConf = `{{.User}}
worker_processes 1;
daemon off;
pid {{.Dir}}/nginx.pid;
error_log {{.LogDir}}/nginx-error.log warn;
events { worker_connections 4096; }
http {
	access_log {{.LogDir}}/nginx-access.log combined buffer=64k flush=1s;
	client_body_temp_path {{.Dir}}/nginx-tmp/body;
	proxy_temp_path {{.Dir}}/nginx-tmp/proxy;
	fastcgi_temp_path {{.Dir}}/nginx-tmp/fastcgi;
	uwsgi_temp_path {{.Dir}}/nginx-tmp/uwsgi;
	scgi_temp_path {{.Dir}}/nginx-tmp/scgi;
	proxy_cache_path {{.NginxCacheDir}} levels=1:2 keys_zone=edge:64m max_size=1g inactive=1h use_temp_path=off;
	keepalive_requests 1000000;
	upstream origin {
		server 127.0.0.1:{{.OriginPort}};
		keepalive 64;
		keepalive_timeout 300s;
	}
	server {
		listen 127.0.0.1:{{.NginxPort}} ssl http2;
		server_name {{.ViewerName}};
		ssl_certificate {{.ViewerCert}};
		ssl_certificate_key {{.ViewerKey}};
		proxy_http_version 1.1;
		proxy_set_header Connection "";
		proxy_set_header Host {{.OriginName}};
		proxy_ssl_server_name on;
		proxy_ssl_name {{.OriginName}};
		proxy_ssl_verify on;
		proxy_ssl_trusted_certificate {{.CA}};
		proxy_ssl_session_reuse on;
		location / {
			proxy_pass https://origin;
			proxy_cache edge;
			add_header X-Cache-Status $upstream_cache_status always;
		}
		location /pass/ {
			proxy_pass https://origin;
		}
	}
}
`

// Caddy as a reverse proxy (its standard build has no cache).
const caddyConf = `{
	admin off
	auto_https off
	persist_config off
	storage file_system {{.CaddyDataDir}}
}
https://{{.ViewerName}}:{{.CaddyPort}} {
	bind 127.0.0.1
	tls {{.ViewerCert}} {{.ViewerKey}}
	log {
		output file {{.LogDir}}/caddy-access.log
	}
	reverse_proxy https://127.0.0.1:{{.OriginPort}} {
		header_up Host {{.OriginName}}
		transport http {
			tls_server_name {{.OriginName}}
			tls_trust_pool file {{.CA}}
		}
	}
}
`

// edgegate with the same certificates, cache and origin; /pass/* has
// caching disabled.
const edgegateConf = `edge:
  location: BENCH1
  listen: {http: "off", https: "127.0.0.1:{{.EdgegatePort}}"}
  certificates:
    files: [{cert: {{.ViewerCert}}, key: {{.ViewerKey}}}]
  cache: {memory: 256MiB}
  logs: {dir: {{.LogDir}}/edgegate}
distributions:
  - aliases: [{{.ViewerName}}]
    viewer_protocol_policy: https-only
    origins:
      - id: origin
        domain_name: {{.OriginName}}
        connect_to: "127.0.0.1:{{.OriginPort}}"
        trusted_ca: {{.CA}}
    default_behavior:
      target: origin
      cache_policy: {key: {query_strings: none}}
    behaviors:
      - {path_pattern: "/pass/*", target: origin, cache_policy: disabled}
`

// ViewerName and OriginName let the templates use the constants.
func (l *layout) ViewerName() string { return viewerName }

// OriginName is the origin's certificate name, for the templates.
func (l *layout) OriginName() string { return originName }
