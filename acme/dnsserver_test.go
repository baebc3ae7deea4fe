package acme

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// authDNS is a real authoritative DNS server for one zone on loopback
// (UDP and TCP): A records the test sets, SOA and NS at the apex, and TXT
// records added and removed by RFC 2136 updates signed with its TSIG key.
// An unsigned or wrongly signed update is refused (NOTAUTH).
type authDNS struct {
	addr    string
	zone    string
	keyName string
	secret  string
	updates atomic.Int32 // accepted updates

	mu  sync.Mutex
	a   map[string]net.IP
	txt map[string][]string
}

func startAuthDNS(t *testing.T, zone string, a map[string]string) *authDNS {
	t.Helper()
	s := &authDNS{zone: dns.Fqdn(zone), keyName: "edgegate-key.", secret: "c2VjcmV0LWtleS1mb3ItZWRnZWdhdGUtdGVzdHMtMTIzNDU2Nzg=",
		a: map[string]net.IP{}, txt: map[string][]string{}}
	for n, ip := range a {
		s.a[dns.Fqdn(strings.ToLower(n))] = net.ParseIP(ip)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for range 20 {
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	if ln == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	s.addr = pc.LocalAddr().String()
	secrets := map[string]string{s.keyName: s.secret}
	h := dns.HandlerFunc(s.serve)
	servers := []*dns.Server{
		{PacketConn: pc, Handler: h, TsigSecret: secrets},
		{Listener: ln, Handler: h, TsigSecret: secrets, ReadTimeout: 5 * time.Second},
	}
	started := make(chan struct{}, 2)
	for _, srv := range servers {
		// miekg/dns refuses UPDATE by default (NOTIMP); this server takes it.
		srv.MsgAcceptFunc = func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept }
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		go func() { _ = srv.ActivateAndServe() }()
	}
	for range 2 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("authoritative DNS server did not start")
		}
	}
	t.Cleanup(func() {
		for _, srv := range servers {
			_ = srv.Shutdown()
		}
	})
	return s
}

func (s *authDNS) dnsConfig() *DNSConfig {
	return &DNSConfig{Provider: ProviderRFC2136, Server: s.addr, TSIG: TSIGConfig{Name: s.keyName, Algorithm: "hmac-sha256", Secret: s.secret}}
}

func (s *authDNS) inZone(name string) bool {
	return name == s.zone || strings.HasSuffix(name, "."+s.zone)
}

func (s *authDNS) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if r.Opcode == dns.OpcodeUpdate {
		s.update(w, r, m)
		return
	}
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	if !s.inZone(name) {
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 60}
	}
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: s.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60}, Ns: "ns1." + s.zone, Mbox: "hostmaster." + s.zone, Serial: 1, Refresh: 60, Retry: 60, Expire: 600, Minttl: 60}
	s.mu.Lock()
	ip, hasA := s.a[name]
	txts := s.txt[name]
	s.mu.Unlock()
	switch {
	case q.Qtype == dns.TypeSOA && name == s.zone:
		m.Answer = append(m.Answer, soa)
	case q.Qtype == dns.TypeNS && name == s.zone:
		m.Answer = append(m.Answer, &dns.NS{Hdr: hdr(dns.TypeNS), Ns: "ns1." + s.zone})
	case q.Qtype == dns.TypeA && hasA && ip.To4() != nil:
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: ip})
	case q.Qtype == dns.TypeTXT && len(txts) > 0:
		for _, t := range txts {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: []string{t}})
		}
	default:
		m.Ns = append(m.Ns, soa)
		if !hasA && len(txts) == 0 && name != s.zone {
			m.Rcode = dns.RcodeNameError
		}
	}
	_ = w.WriteMsg(m)
}

func (s *authDNS) update(w dns.ResponseWriter, r *dns.Msg, m *dns.Msg) {
	reply := func(rcode int) {
		m.Rcode = rcode
		if t := r.IsTsig(); t != nil && w.TsigStatus() == nil {
			m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
		}
		_ = w.WriteMsg(m)
	}
	if r.IsTsig() == nil || w.TsigStatus() != nil {
		reply(dns.RcodeNotAuth)
		return
	}
	if len(r.Question) != 1 || strings.ToLower(r.Question[0].Name) != s.zone {
		reply(dns.RcodeNotZone)
		return
	}
	s.mu.Lock()
	for _, rr := range r.Ns {
		t, ok := rr.(*dns.TXT)
		name := strings.ToLower(rr.Header().Name)
		if !ok || !s.inZone(name) {
			continue
		}
		v := strings.Join(t.Txt, "")
		if rr.Header().Class == dns.ClassNONE { // delete this record
			out := s.txt[name][:0]
			for _, x := range s.txt[name] {
				if x != v {
					out = append(out, x)
				}
			}
			s.txt[name] = out
		} else {
			s.txt[name] = append(s.txt[name], v)
		}
	}
	s.mu.Unlock()
	s.updates.Add(1)
	reply(dns.RcodeSuccess)
}
