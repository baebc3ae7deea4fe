// Package testdns runs a real DNS server on loopback for tests, so that code
// resolving names (the edge dialling an origin, an ACME CA validating a name)
// goes through a genuine resolver path with records the test controls,
// instead of /etc/hosts tricks or mocked lookups.
package testdns

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server answers A queries for its records (name → IPv4 address), NXDOMAIN
// for any other name, and an empty answer for other query types of a known
// name (so AAAA-first clients such as Pebble fall back to A). It serves UDP
// and TCP on the same 127.0.0.1 port. Its methods are safe for concurrent use.
type Server struct {
	addr string

	mu      sync.Mutex
	records map[string]net.IP // keyed by lower-case FQDN
}

// Start runs a server until the test ends. Records map names (with or
// without the trailing dot, any case) to IPv4 addresses such as "127.0.0.2";
// an invalid address fails the test.
func Start(t testing.TB, records map[string]string) *Server {
	t.Helper()
	s := &Server{records: map[string]net.IP{}}
	for name, ip := range records {
		if err := s.set(name, ip); err != nil {
			t.Fatalf("testdns: %v", err)
		}
	}
	pc, ln, err := listenPair()
	if err != nil {
		t.Fatalf("testdns: %v", err)
	}
	s.addr = pc.LocalAddr().String()

	h := dns.HandlerFunc(s.serve)
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	started := make(chan struct{}, 2)
	udp.NotifyStartedFunc = func() { started <- struct{}{} }
	tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	done := make(chan error, 2)
	go func() { done <- udp.ActivateAndServe() }()
	go func() { done <- tcp.ActivateAndServe() }()
	for range 2 {
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("testdns: server stopped at start: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("testdns: server did not start within 10s")
		}
	}
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	})
	return s
}

// listenPair binds UDP and TCP on the same loopback port. The port is chosen
// for UDP first, so TCP may find it taken by someone else: try a few times.
func listenPair() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 10 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp: %w", err)
		}
		ln, err := net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("no port free for both UDP and TCP: %w", lastErr)
}

// Addr is the server's HOST:PORT, for a resolver setting or a client.
func (s *Server) Addr() string { return s.addr }

// Set adds or changes the A record of name while the server runs; an empty
// ip removes the name (it then answers NXDOMAIN). It panics on an address
// that is not IPv4, a mistake in the test itself.
func (s *Server) Set(name, ip string) {
	if err := s.set(name, ip); err != nil {
		panic("testdns: " + err.Error())
	}
}

func (s *Server) set(name, ip string) error {
	key := dns.Fqdn(strings.ToLower(name))
	s.mu.Lock()
	defer s.mu.Unlock()
	if ip == "" {
		delete(s.records, key)
		return nil
	}
	addr := net.ParseIP(ip).To4()
	if addr == nil {
		return errors.New("record " + name + ": " + ip + " is not an IPv4 address")
	}
	s.records[key] = addr
	return nil
}

func (s *Server) lookup(name string) (net.IP, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ip, ok := s.records[strings.ToLower(name)]
	return ip, ok
}

func (s *Server) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	ip, ok := s.lookup(q.Name)
	switch {
	case !ok:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeA && q.Qclass == dns.ClassINET:
		m.Answer = append(m.Answer, &dns.A{
			// TTL 0: a test that changes a record must see the change at once.
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
			A:   ip,
		})
	}
	_ = w.WriteMsg(m)
}
