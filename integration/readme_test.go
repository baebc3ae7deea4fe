package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/internal/syncbuf"
	"go.yaml.in/yaml/v3"
)

// The README promises that every shell command in it works. TestREADME
// runs every command of its ```sh blocks in order, as written, in a copy of
// the checkout, through one bash session (so variables and PATH carry from
// one command to the next) with real curl, make and go. Only what cannot
// run here is stood in for: `docker compose` runs compose.yaml's topology
// as processes on 127.0.0.x, and the addresses and ports the README uses
// (127.0.0.1:443, 10.0.1.5:443) are mapped to the loopback ones the
// processes use. The backquoted strings in a command's comment are what
// the reader is told to expect: each must appear in its output (ignoring
// case, for HTTP/2's lower-case header names), and "exit N" is its exit
// status.

// readmeCommand is one command of a ```sh block of README.md.
type readmeCommand struct {
	line   int      // where it starts in README.md
	text   string   // the command: continuation lines joined, comment removed
	expect []string // the backquoted strings of its comment
	exit   int      // "exit N" in its comment, else 0
}

func (c readmeCommand) String() string { return fmt.Sprintf("README.md:%d: %s", c.line, c.text) }

var (
	backquoted = regexp.MustCompile("`([^`]+)`")
	exitStatus = regexp.MustCompile(`\bexit (\d+)\b`)
)

// readmeCommands returns the commands of README.md's sh blocks.
func readmeCommands(t *testing.T) []readmeCommand {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var (
		cmds    []readmeCommand
		inSh    bool
		fence   bool
		pending string
		start   int
	)
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			switch {
			case fence:
				fence, inSh = false, false
			default:
				fence, inSh = true, trimmed == "```sh"
			}
			continue
		}
		if !inSh || (pending == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#"))) {
			continue
		}
		if pending == "" {
			start = i + 1
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			pending += body + " "
			continue
		}
		text, comment := splitComment(pending + trimmed)
		pending = ""
		c := readmeCommand{line: start, text: text}
		for _, m := range backquoted.FindAllStringSubmatch(comment, -1) {
			c.expect = append(c.expect, m[1])
		}
		if m := exitStatus.FindStringSubmatch(comment); m != nil {
			c.exit, _ = strconv.Atoi(m[1])
		}
		cmds = append(cmds, c)
	}
	if fence || pending != "" {
		t.Fatalf("README.md: a code block or a continued command does not end")
	}
	return cmds
}

// splitComment splits a shell line at its comment: a # after blank space,
// outside quotes.
func splitComment(s string) (cmd, comment string) {
	var quote byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && i > 0 && (s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimSpace(s[:i]), s[i+1:]
		}
	}
	return strings.TrimSpace(s), ""
}

// shell is one bash session that runs commands one at a time, each with
// its output in a file, so that state (variables, PATH) carries over.
type shell struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	dir   string // where output and status files go
	n     int
}

func startShell(t *testing.T, work string, env []string) *shell {
	t.Helper()
	s := &shell{cmd: exec.Command("bash", "--noprofile", "--norc", "-s"), dir: t.TempDir()}
	s.cmd.Dir, s.cmd.Env = work, env
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start bash: %v", err)
	}
	t.Cleanup(func() {
		s.stdin.Close()
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
	})
	return s
}

// run runs command and returns its output (stdout and stderr) and exit
// status; it fails the test if the command does not finish within d.
func (s *shell) run(t *testing.T, command string, d time.Duration) (string, int) {
	t.Helper()
	s.n++
	out := filepath.Join(s.dir, fmt.Sprintf("out.%d", s.n))
	rc := filepath.Join(s.dir, fmt.Sprintf("rc.%d", s.n))
	if _, err := fmt.Fprintf(s.stdin, "{ %s\n} >%q 2>&1 </dev/null; echo $? >%q.tmp; mv %q.tmp %q\n", command, out, rc, rc, rc); err != nil {
		t.Fatalf("%s: the shell is gone: %v", command, err)
	}
	deadline := time.Now().Add(d)
	for {
		if b, err := os.ReadFile(rc); err == nil {
			code, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			o, _ := os.ReadFile(out)
			return string(o), code
		}
		if time.Now().After(deadline) {
			o, _ := os.ReadFile(out)
			t.Fatalf("%s: not done after %s; output so far:\n%s", command, d, o)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readmeRun is the state of one walk through the README.
type readmeRun struct {
	t       *testing.T
	ctx     context.Context
	work    string // the copy of the checkout the commands run in
	env     []string
	sh      *shell
	subst   []string // README text → what it means here, in pairs
	project *types.Project
	acme    *acmeHost
	stack   *composeStack
	lb      string // a TLS origin with certificates for alb.example.test, alb.example.com, alb-dr.example.com
	lbSeen  chan http.Header
	caFile  string // the CA of those certificates, with the system roots
}

// demoIP is the README demo's loopback address, used by no other test.
const demoIP = "127.0.0.80"

func TestREADME(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	// The admin token the README has the reader export; the compose
	// stack's processes inherit it as the containers would.
	t.Setenv("EDGEGATE_ADMIN_TOKEN", "readme-test-admin-token")
	r := &readmeRun{t: t, ctx: ctx, work: mirrorCheckout(t), project: loadCompose(t), lbSeen: make(chan http.Header, 16)}
	r.startLoadBalancer()
	r.subst = []string{"10.0.1.5:443", r.lb}

	// Make's variables, for the two targets whose defaults suit a person
	// more than a test: other demo ports, a small bench-logs file. The
	// demo needs fixed ports, chosen here and bound only after make has
	// built the binary; on an address of its own no other test's
	// listener or outgoing connection can take them in that gap.
	demoHTTP, demoHTTPS, demoAdmin := freePort(t, demoIP), freePort(t, demoIP), freePort(t, demoIP)
	r.env = append(os.Environ(),
		"SSL_CERT_FILE="+r.caFile, // the system roots, and the test load balancer's CA as if it were public
		"DEMO_ARGS=-http "+demoIP+":"+demoHTTP+" -https "+demoIP+":"+demoHTTPS+" -admin "+demoIP+":"+demoAdmin,
		"BENCH_LOGS_SIZE=4MiB", "TMPDIR="+t.TempDir(),
	)
	r.sh = startShell(t, r.work, r.env)

	handlers := []struct {
		re  *regexp.Regexp
		run func(c readmeCommand, m []string)
	}{
		{regexp.MustCompile(`^make test$`), r.makeTest},
		{regexp.MustCompile(`^make demo$`), r.makeDemo},
		{regexp.MustCompile(`^docker compose up -d --build --wait$`), r.composeUp},
		{regexp.MustCompile(`^docker compose --profile cluster up -d --wait$`), r.composeCluster},
		{regexp.MustCompile(`^docker compose (?:--profile cluster )?down$`), r.composeDown},
		{regexp.MustCompile(`^docker compose exec (\S+) (.+)$`), r.composeExec},
		{regexp.MustCompile(`^make build$`), r.makeBuild},
		{regexp.MustCompile(`^cp configs/edge.yaml (\S+)$`), r.copyEdgeConfig},
		{regexp.MustCompile(`^edgegate edge -config (\S+)$`), r.runEdge},
		{regexp.MustCompile(`.`), func(c readmeCommand, _ []string) { r.check(c, c.text, nil) }},
	}
	cmds := readmeCommands(t)
	if len(cmds) < 20 {
		t.Fatalf("found %d commands in README.md; the parser is broken", len(cmds))
	}
	for _, c := range cmds {
		for _, h := range handlers {
			if m := h.re.FindStringSubmatch(c.text); m != nil {
				t.Logf("%s", c)
				h.run(c, m)
				break
			}
		}
		if t.Failed() {
			t.Fatalf("stopped at %s", c)
		}
	}
	if r.stack != nil && r.stack.started != nil {
		t.Errorf("the README starts the compose stack and never takes it down")
	}
}

// retried are commands that only read state that settles (logs reach
// their files within a second, invalidations complete): they are repeated
// until their expectations hold, for a bounded time.
var retried = regexp.MustCompile(`edgegate logs |/invalidations/|/metrics`)

// check runs command (c.text, or what stands in for it) in the shell and
// compares its output with c's expectations; extra are more substitutions,
// which take precedence over the run's.
func (r *readmeRun) check(c readmeCommand, command string, extra []string) {
	t := r.t
	t.Helper()
	rep := strings.NewReplacer(append(slices.Clone(extra), r.subst...)...)
	command = rep.Replace(command)
	for attempt := 0; ; attempt++ {
		out, code := r.sh.run(t, command, 5*time.Minute)
		var missing []string
		for _, e := range c.expect {
			if !strings.Contains(strings.ToLower(out), strings.ToLower(rep.Replace(e))) {
				missing = append(missing, rep.Replace(e))
			}
		}
		if code == c.exit && len(missing) == 0 {
			return
		}
		if !retried.MatchString(c.text) || attempt == 50 {
			t.Errorf("%s\nran %s: exit %d (want %d), missing %q in its output:\n%s", c, command, code, c.exit, missing, out)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// makeTest: CI runs `make test` on a clean checkout; running it from a
// test it runs would never end.
func (r *readmeRun) makeTest(c readmeCommand, _ []string) {
	ci, err := os.ReadFile("../.ci/run")
	if err != nil || !regexp.MustCompile(`(?m)^make test$`).Match(ci) {
		r.t.Errorf("%s: .ci/run does not run it (%v)", c, err)
	}
}

// makeBuild runs `make build`, whose binary the README says can be copied
// to a server as it is.
func (r *readmeRun) makeBuild(c readmeCommand, _ []string) {
	r.check(c, c.text, nil)
	if err := staticExecutable(filepath.Join(r.work, "bin/edgegate")); err != nil {
		r.t.Errorf("%s: %v", c, err)
	}
}

// makeDemo runs `make demo` until it prints its curl lines, runs them,
// then presses Ctrl-C.
func (r *readmeRun) makeDemo(c readmeCommand, _ []string) {
	t := r.t
	out := &syncbuf.Buffer{}
	cmd := exec.Command("make", "demo")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = r.work, r.env, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}()
	curl := regexp.MustCompile(`(?m)^\s+(curl .*)$`)
	var lines [][]string
	for lines == nil {
		select {
		case <-done:
			t.Fatalf("%s exited before printing its curl lines:\n%s", c, out)
		case <-r.ctx.Done():
			t.Fatalf("%s printed no curl lines:\n%s", c, out)
		case <-time.After(200 * time.Millisecond):
		}
		lines = curl.FindAllStringSubmatch(out.String(), -1)
	}
	if len(lines) != 2 {
		t.Fatalf("%s printed %d curl lines, want the HTTPS and the HTTP one:\n%s", c, len(lines), out)
	}
	// What the README says of them: a Miss answered by an app, then a Hit;
	// plain HTTP answers 301.
	https, _ := splitComment(lines[0][1])
	for _, want := range []string{"Miss from edgegate", "Hit from edgegate"} {
		r.check(readmeCommand{line: c.line, text: https, expect: []string{"hello from app", "X-Cache: " + want}},
			strings.Replace(https, "curl ", "curl -i ", 1), nil)
	}
	httpLine, _ := splitComment(lines[1][1])
	r.check(readmeCommand{line: c.line, text: httpLine, expect: []string{"301 Moved Permanently", "Location: https://www.example.test:"}}, httpLine, nil)

	// Ctrl-C reaches the whole foreground process group.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s of Ctrl-C:\n%s", c, out)
	}
	if !strings.Contains(out.String(), "demo: stopping") || strings.Contains(out.String(), "edgegate demo: ") {
		t.Errorf("%s did not stop cleanly on Ctrl-C:\n%s", c, out)
	}
}

func (r *readmeRun) composeUp(c readmeCommand, _ []string) {
	if r.acme == nil {
		r.acme = startACMEHost(r.ctx, r.t, r.project)
	}
	r.stack = upComposeStack(r.ctx, r.t, r.project, r.acme)
	r.subst = append(r.subst, r.stack.substitutions()...)
}

func (r *readmeRun) needStack(c readmeCommand) {
	if r.stack == nil || r.stack.started == nil {
		r.t.Fatalf("%s: the compose stack is not up", c)
	}
}

func (r *readmeRun) composeCluster(c readmeCommand, _ []string) {
	r.needStack(c)
	r.stack.upCluster(r.ctx)
}

func (r *readmeRun) composeDown(c readmeCommand, _ []string) {
	r.needStack(c)
	r.stack.down()
}

// composeExec runs the command in the service's stead: with its logs
// volume for /var/log/edgegate.
func (r *readmeRun) composeExec(c readmeCommand, m []string) {
	r.needStack(c)
	dir, ok := r.stack.edgeLogs[m[1]]
	if !ok {
		r.t.Fatalf("%s: no edge service %s", c, m[1])
	}
	r.check(c, m[2], []string{"/var/log/edgegate", dir})
}

// copyEdgeConfig runs the cp, then makes the edits the README asks of the
// reader, as one who owns www.example.com would, but for what a test on
// loopback needs: Pebble stands in for Let's Encrypt staging, a DNS server
// of the test's for the public DNS, and the test's load balancer for the
// origins; addresses and ports are on loopback.
func (r *readmeRun) copyEdgeConfig(c readmeCommand, m []string) {
	t := r.t
	r.check(c, c.text, nil)
	if r.acme == nil {
		r.acme = startACMEHost(r.ctx, t, r.project)
	}
	for _, name := range []string{"www.example.com", "example.com"} {
		r.acme.dns.Set(name, realEdgeIP)
	}
	path := filepath.Join(r.work, m[1])
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, e := range [][2]string{
		{"edge.listen.http", net.JoinHostPort(realEdgeIP, r.acme.httpPort)},
		{"edge.listen.https", net.JoinHostPort(realEdgeIP, r.acme.httpsPort)},
		{"edge.resolver", r.acme.dns.Addr()},
		{"edge.certificates.acme.directory", r.acme.pebble.Directory},
		{"edge.certificates.acme.trusted_roots", filepath.Join(r.work, "configs/compose/certs/pebble-api-ca.pem")},
		{"edge.certificates.acme.http_port", r.acme.httpPort},
		{"edge.certificates.acme.tls_port", r.acme.httpsPort},
		{"edge.certificates.storage", "file://" + filepath.Join(dir, "storage")},
		{"edge.logs.dir", filepath.Join(dir, "logs")},
		{"edge.cache.disk.path", filepath.Join(dir, "cache")},
		{"edge.admin.listen", net.JoinHostPort(realEdgeIP, freePort(t, realEdgeIP))},
		{"distributions[0].origins[0].connect_to", r.lb},
		{"distributions[0].origins[1].connect_to", r.lb},
	} {
		if err := setYAML(&doc, e[0], e[1]); err != nil {
			t.Fatalf("editing %s: %v", path, err)
		}
	}
	out, err := yaml.Marshal(&doc)
	if err == nil {
		err = os.WriteFile(path, out, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// runEdge runs the edge in the foreground, as the README does: until it
// holds certificates for every alias from the CA and serves a viewer
// through its origins; then the reader presses Ctrl-C.
func (r *readmeRun) runEdge(c readmeCommand, m []string) {
	t := r.t
	path := filepath.Join(r.work, m[1])
	var cfg struct {
		Edge struct {
			Listen struct{ HTTPS string }
		}
		Distributions []struct{ Aliases []string }
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = yaml.Unmarshal(data, &cfg)
	}
	if err != nil || len(cfg.Distributions) == 0 {
		t.Fatalf("%s: %v", c, err)
	}
	// The edgegate the shell would run: the first on its PATH.
	bin, _ := r.sh.run(t, "command -v edgegate", time.Minute)
	bin = strings.TrimSpace(bin)
	if !strings.HasPrefix(bin, r.work) {
		t.Fatalf("%s: edgegate is %q, not the one make built in the checkout", c, bin)
	}
	out := &syncbuf.Buffer{}
	edge := exec.Command(bin, strings.Fields(c.text)[1:]...)
	edge.Dir, edge.Env = r.work, r.env
	cmd := startCommand(t, out, edge)

	for _, name := range cfg.Distributions[0].Aliases {
		waitCertificate(r.ctx, t, name, cfg.Edge.Listen.HTTPS, r.acme.root, cmd, out)
	}
	_, port, _ := net.SplitHostPort(cfg.Edge.Listen.HTTPS)
	// Forget what check -probe sent the load balancer.
	for len(r.lbSeen) > 0 {
		<-r.lbSeen
	}
	viewer := viewerClient(r.acme.root, realEdgeIP)
	req, _ := http.NewRequestWithContext(r.ctx, http.MethodGet, "https://www.example.com:"+port+"/", nil)
	resp, err := viewer.Do(req)
	if err != nil {
		t.Fatalf("%s: GET https://www.example.com/: %v\n%s", c, err, out)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello from the load balancer\n" || resp.Header.Get("X-Cache") != "Miss from edgegate" {
		t.Errorf("%s: GET https://www.example.com/: %s %q X-Cache %q\n%s", c, resp.Status, body, resp.Header.Get("X-Cache"), out)
	}
	select {
	case h := <-r.lbSeen:
		if h.Get("X-Origin-Verify") != "change-me" || h.Get("X-Tls-Server-Name") != "alb.example.com" {
			t.Errorf("the origin got SNI %q and X-Origin-Verify %q; want alb.example.com and the config's custom header",
				h.Get("X-Tls-Server-Name"), h.Get("X-Origin-Verify"))
		}
	default:
		t.Errorf("the load balancer saw no request")
	}
	cmd.stop(syscall.SIGINT, 30*time.Second)
	if code := cmd.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("%s exited %d after Ctrl-C:\n%s", c, code, out)
	}
}

// startLoadBalancer starts an HTTPS origin with certificates for the
// README's origin names from a CA of the test's, which r.caFile adds to the
// system roots as if it were a public CA.
func (r *readmeRun) startLoadBalancer() {
	t := r.t
	ca, err := pki.NewAuthority("edgegate README test public CA")
	if err != nil {
		t.Fatal(err)
	}
	var certs []tls.Certificate
	for _, names := range [][]string{{"alb.example.test"}, {"alb.example.com"}, {"alb-dr.example.com"}} {
		leaf, err := ca.Issue(pki.LeafOptions{Names: names})
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, leaf.TLS())
	}
	system, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	r.caFile = filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(r.caFile, append(system, ca.CertPEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", net.JoinHostPort(lbIP, "0"), &tls.Config{Certificates: certs, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	r.lb = ln.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := req.Header.Clone()
		h.Set("X-Tls-Server-Name", req.TLS.ServerName)
		select {
		case r.lbSeen <- h:
		default:
		}
		fmt.Fprintln(w, "hello from the load balancer")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
}

// mirrorCheckout returns a directory that holds the checkout's files as
// symbolic links, so that what the README's commands write (bin/,
// demo-logs/, edge.yaml, pebble-root.pem) stays out of the checkout.
func mirrorCheckout(t *testing.T) string {
	t.Helper()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	entries, err := os.ReadDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	skip := regexp.MustCompile(`^(\.git|bin|demo-logs.*|edge\.yaml|pebble-root\.pem|report\.html)$`)
	for _, e := range entries {
		if skip.MatchString(e.Name()) {
			continue
		}
		if err := os.Symlink(filepath.Join(repo, e.Name()), filepath.Join(work, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return work
}

// setYAML sets the scalar at path (keys and [i] indexes, dot-separated) in
// a decoded document, adding the last key to its mapping if it is absent.
func setYAML(doc *yaml.Node, path, value string) error {
	n := doc
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	parts := strings.Split(path, ".")
	for i, part := range parts {
		key, idx, hasIdx := strings.Cut(part, "[")
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: not a mapping at %s", path, part)
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == key {
				next = n.Content[j+1]
			}
		}
		if next == nil {
			if i != len(parts)-1 || hasIdx {
				return fmt.Errorf("%s: no key %s", path, key)
			}
			next = &yaml.Node{Kind: yaml.ScalarNode}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, next)
		}
		if hasIdx {
			k, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			if err != nil || next.Kind != yaml.SequenceNode || k >= len(next.Content) {
				return fmt.Errorf("%s: no element %s", path, part)
			}
			next = next.Content[k]
		}
		n = next
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s: not a scalar", path)
	}
	n.Tag, n.Value, n.Style = "", value, 0
	return nil
}
