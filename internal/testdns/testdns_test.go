package testdns

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func exchange(network, addr, name string, qtype uint16) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func query(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	r, err := exchange(network, addr, name, qtype)
	if err != nil {
		t.Fatalf("%s query %s: %v", network, name, err)
	}
	return r
}

func TestAnswers(t *testing.T) {
	s := Start(t, map[string]string{"App.Example.Test": "127.0.0.9", "ca.example.test.": "127.0.0.10"})
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			tests := []struct {
				name   string
				qtype  uint16
				rcode  int
				answer string // "" = no answer records
			}{
				{"app.example.test", dns.TypeA, dns.RcodeSuccess, "127.0.0.9"},
				{"APP.example.test", dns.TypeA, dns.RcodeSuccess, "127.0.0.9"},
				{"ca.example.test", dns.TypeA, dns.RcodeSuccess, "127.0.0.10"},
				{"app.example.test", dns.TypeAAAA, dns.RcodeSuccess, ""},
				{"app.example.test", dns.TypeTXT, dns.RcodeSuccess, ""},
				{"nope.example.test", dns.TypeA, dns.RcodeNameError, ""},
				{"nope.example.test", dns.TypeAAAA, dns.RcodeNameError, ""},
			}
			for _, tc := range tests {
				r := query(t, network, s.Addr(), tc.name, tc.qtype)
				if r.Rcode != tc.rcode {
					t.Errorf("%s %s: rcode %s, want %s", tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				got := ""
				if len(r.Answer) == 1 {
					if a, ok := r.Answer[0].(*dns.A); ok {
						got = a.A.String()
					}
				} else if len(r.Answer) > 1 {
					got = "several"
				}
				if got != tc.answer {
					t.Errorf("%s %s: answer %q, want %q", tc.name, dns.TypeToString[tc.qtype], got, tc.answer)
				}
			}
		})
	}
}

func resolver(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// The Go resolver asks A and AAAA together: the empty AAAA answer must not
// hide the A record, and an unknown name must be "not found", not an error.
func TestGoResolverAndSet(t *testing.T) {
	s := Start(t, map[string]string{"app.example.test": "127.0.0.9"})
	r := resolver(s.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	addrs, err := r.LookupHost(ctx, "app.example.test")
	if err != nil || len(addrs) != 1 || addrs[0] != "127.0.0.9" {
		t.Fatalf("lookup: %v, %v; want [127.0.0.9]", addrs, err)
	}
	s.Set("app.example.test", "127.0.0.11")
	s.Set("new.example.test", "127.0.0.12")
	if addrs, err = r.LookupHost(ctx, "app.example.test"); err != nil || len(addrs) != 1 || addrs[0] != "127.0.0.11" {
		t.Fatalf("after Set: %v, %v; want [127.0.0.11]", addrs, err)
	}
	if addrs, err = r.LookupHost(ctx, "new.example.test"); err != nil || len(addrs) != 1 || addrs[0] != "127.0.0.12" {
		t.Fatalf("added name: %v, %v; want [127.0.0.12]", addrs, err)
	}
	s.Set("new.example.test", "")
	_, err = r.LookupHost(ctx, "new.example.test")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("removed name: err %v, want not found", err)
	}
}

func TestConcurrentSetAndQuery(t *testing.T) {
	s := Start(t, map[string]string{"app.example.test": "127.0.0.9"})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				if i%2 == 0 {
					s.Set("app.example.test", "127.0.0."+string(rune('1'+j%9)))
				} else {
					r, err := exchange("udp", s.Addr(), "app.example.test", dns.TypeA)
					if err != nil {
						t.Errorf("query during Set: %v", err)
						return
					}
					if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
						t.Errorf("query during Set: rcode %d, %d answers", r.Rcode, len(r.Answer))
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestSetRejectsNonIPv4(t *testing.T) {
	s := Start(t, nil)
	defer func() {
		if recover() == nil {
			t.Fatal("Set with an IPv6 address did not panic")
		}
	}()
	s.Set("app.example.test", "::1")
}
