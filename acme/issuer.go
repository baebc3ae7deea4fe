package acme

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/edgegate/edgegate/acme/redisstore"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
	"github.com/rs/zerolog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	// storageCloseWait bounds how long Close waits for certmagic's jobs to
	// release the certificate storage.
	storageCloseWait = 10 * time.Second

	acmeTLS1      = "acme-tls/1"
	challengePath = "/.well-known/acme-challenge/"
)

// startACME builds one certmagic cache and config for this Manager and
// starts managing the configured names that no static certificate covers.
func (m *Manager) startACME(ctx context.Context, cfg Config) error {
	a := cfg.ACME
	log := m.opts.Logger.With().Str("component", "acme").Logger()
	zlog := zap.New(zerologCore{log: log})

	opened, closeStorage, err := openStorage(ctx, cfg.Storage, log)
	if err != nil {
		return err
	}
	storage, gate := newGatedStorage(opened)
	m.closers = append(m.closers, func() {
		// certmagic's jobs see the cancelled context at their next step;
		// an ACME request in flight is bounded by its own timeout.
		if !gate.close(storageCloseWait) {
			log.Warn().Dur("waited", storageCloseWait).Msg("certificate storage closed with an order still running: it may leave a lock that expires on its own")
		}
		closeStorage()
	})

	// An unknown profile would fail every order, in the background and
	// over and over: refuse it at start, naming what the CA offers. A CA
	// that cannot be reached is only logged: a fallback CA, or a later
	// retry, still gets the names their certificates.
	for _, iss := range a.issuers() {
		if err := CheckProfile(ctx, iss); errors.Is(err, ErrUnknownProfile) {
			return fmt.Errorf("profile: %w", err)
		} else if err != nil {
			log.Warn().Err(err).Str("ca", iss.Directory).Msg("profile not checked: the CA's directory cannot be read now")
		}
	}
	httpOn := len(a.Challenges) == 0 || slices.Contains(a.Challenges, ChallengeHTTP01)
	m.tlsALPN = len(a.Challenges) == 0 || slices.Contains(a.Challenges, ChallengeTLSALPN01)
	var dnsProvider *rfc2136
	var dnsSolver acmez.Solver // an interface: a nil *DNS01Solver in it would turn DNS-01 on
	if a.dns01() && a.DNS != nil {
		dnsProvider = newRFC2136(a.DNS)
		dnsSolver = &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{
			DNSProvider: dnsProvider,
			TTL:         60 * time.Second,
			// The primary server that took the update is asked, with a
			// bound, before the CA is told to look.
			Resolvers:          []string{dnsProvider.server},
			PropagationTimeout: dnsPropagationTimeout,
			Logger:             zlog,
		}}
	}

	// The edge's own listeners answer the challenges (port 80 through
	// HTTPChallengeHandler, 443 through GetCertificate). certmagic's solvers
	// still try to bind a challenge port and, when that port is already in
	// use, assume its owner answers: point them at a loopback port this
	// Manager holds, so that they never bind a real port (as root they
	// could take :80 from under another process) and the distributed solver
	// (challenge data in the shared storage) lets any cluster node answer.
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("reserve a loopback port for certmagic's solvers: %w", err)
	}
	m.closers = append(m.closers, func() { _ = sink.Close() })
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	sinkPort := sink.Addr().(*net.TCPAddr).Port

	// Without ARI, certmagic renews at a fixed fraction of lifetime left:
	// magic (1/3) for long lifetimes, magicShort (1/2) under 10 days. Both
	// share the cache, storage and issuers.
	var magic, magicShort *certmagic.Config
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(c certmagic.Certificate) (*certmagic.Config, error) {
			if renewalWindowRatio(c.Lifetime()) != magic.RenewalWindowRatio {
				return magicShort, nil
			}
			return magic, nil
		},
		RenewCheckInterval: m.opts.renewCheck,
		Logger:             zlog,
	})
	magic = certmagic.New(m.cache, certmagic.Config{Storage: storage, Logger: zlog, RenewalWindowRatio: renewalWindowRatio(90 * 24 * time.Hour)})
	var issuers []*certmagic.ACMEIssuer
	for _, iss := range a.issuers() {
		roots, err := loadRoots(iss.TrustedRoots)
		if err != nil {
			return err
		}
		var eab *acme.EAB
		if iss.EAB != nil {
			eab = &acme.EAB{KeyID: iss.EAB.KeyID, MACKey: strings.TrimRight(iss.EAB.MACKey, "=")}
		}
		issuers = append(issuers, certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
			CA:                      iss.Directory,
			Email:                   iss.Email,
			Profile:                 iss.Profile, // certmagic names it in every order, renewals included
			ExternalAccount:         eab,
			Agreed:                  true,
			TrustedRoots:            roots,
			DisableHTTPChallenge:    !httpOn,
			DisableTLSALPNChallenge: !m.tlsALPN,
			DNS01Solver:             dnsSolver,
			ListenHost:              "127.0.0.1",
			AltHTTPPort:             sinkPort,
			AltTLSALPNPort:          sinkPort,
			Logger:                  zlog,
		}))
	}
	m.issuers = issuers
	httpPort, tlsPort := a.HTTPPort, a.TLSPort
	if httpPort == 0 {
		httpPort = 80
	}
	if tlsPort == 0 {
		tlsPort = 443
	}
	m.pre = newPrecheck(storage, m.opts.Resolver, log)
	if httpOn {
		m.pre.httpPort = strconv.Itoa(httpPort)
	} else {
		m.pre.tlsPort = strconv.Itoa(tlsPort)
	}
	// certmagic tries the issuers in order for every order and renewal, so
	// a renewal goes back to the primary CA once it answers again.
	magic.Issuers = nil // certmagic.New put its default (Let's Encrypt) there
	for i, iss := range issuers {
		g := &guardedIssuer{ACMEIssuer: iss, pre: m.pre, dns: dnsProvider, storage: storage, log: log}
		if i > 0 {
			g.budget = iss.IssuerKey()
		}
		magic.Issuers = append(magic.Issuers, g)
	}
	short := *magic
	short.RenewalWindowRatio = renewalWindowRatio(0)
	magicShort = &short
	m.magic = magic

	m.acmeNames = make(map[string]bool)
	var manage []string
	for _, n := range m.opts.Names {
		n = normalize(n)
		if m.find(n) != nil || m.acmeNames[n] {
			continue // a static certificate serves it; ordering would waste the CA's limits
		}
		if strings.HasPrefix(n, "*.") && dnsSolver == nil {
			log.Error().Str("name", n).Msg("a wildcard name needs the DNS-01 challenge (certificates.acme.challenges: [dns-01] with certificates.acme.dns): put its certificate in certificates.files")
			continue
		}
		if net.ParseIP(n) != nil && a.Profile != ProfileShortlived {
			log.Error().Str("name", n).Str("profile", a.Profile).Msg("an IP address is ordered only with certificates.acme.profile: shortlived (the only profile Let's Encrypt issues IP certificates under): put its certificate in certificates.files")
			continue
		}
		m.acmeNames[n] = true
		manage = append(manage, n)
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.stop = stop
	every := m.opts.expiryCheck
	if every == 0 {
		every = time.Minute
	}
	go m.watchExpiry(bg, every)
	if len(manage) > 0 {
		log.Info().Strs("names", manage).Strs("ca", caList(a)).Str("storage", storageName(cfg.Storage)).Msg("managing ACME certificates")
		// ManageAsync loads what storage has and orders the rest in the
		// background, retrying with backoff, so a CA outage does not stop
		// the edge from starting.
		if err := magic.ManageAsync(bg, manage); err != nil {
			return fmt.Errorf("manage %s: %w", strings.Join(manage, ", "), err)
		}
	}
	return nil
}

// loadRoots reads a trusted_roots PEM file; nil (the system's) when
// file is empty.
func loadRoots(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("trusted_roots: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("trusted_roots %s: no PEM certificate in it", file)
	}
	return roots, nil
}

// openStorage opens the storage named by a certificates.storage URL.
func openStorage(ctx context.Context, raw string, log zerolog.Logger) (certmagic.Storage, func(), error) {
	switch {
	case raw == "":
		dir, err := defaultDataDir()
		if err != nil {
			return nil, nil, err
		}
		return &certmagic.FileStorage{Path: dir}, func() {}, nil
	case strings.HasPrefix(raw, "file://"):
		p := strings.TrimPrefix(raw, "file://")
		if p == "" || !filepath.IsAbs(p) {
			return nil, nil, fmt.Errorf("storage %q: use file:///absolute/path", raw)
		}
		return &certmagic.FileStorage{Path: p}, func() {}, nil
	default:
		s, err := redisstore.New(ctx, redisstore.Options{URL: raw, Logger: &log})
		if err != nil {
			return nil, nil, fmt.Errorf("storage %s: %w", storageName(raw), err)
		}
		return s, func() { _ = s.Close() }, nil
	}
}

// storageName is the storage URL without a password, for logs.
func storageName(raw string) string {
	if raw == "" {
		return "file (default directory)"
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		if at := strings.LastIndex(raw, "@"); at > i {
			return raw[:i+3] + "…@" + raw[at+1:]
		}
	}
	return raw
}

// defaultDataDir follows the XDG base directory convention, as certmagic
// does, under an edgegate directory.
func defaultDataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "edgegate"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("default certificate storage: %w (set certificates.storage)", err)
	}
	return filepath.Join(home, ".local", "share", "edgegate"), nil
}

// zerologCore sends certmagic's zap logs to the operational zerolog log,
// so that the operator has one log to read.
type zerologCore struct {
	log    zerolog.Logger
	fields []zapcore.Field
}

func (c zerologCore) Enabled(l zapcore.Level) bool { return l >= zapcore.InfoLevel }

func (c zerologCore) With(fs []zapcore.Field) zapcore.Core {
	return zerologCore{log: c.log, fields: append(slices.Clip(c.fields), fs...)}
}

func (c zerologCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c zerologCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fs {
		f.AddTo(enc)
	}
	// zerolog writes a time.Duration as a bare number of milliseconds
	// ("retrying_in":60000); a Go duration string carries its unit.
	for k, v := range enc.Fields {
		if d, ok := v.(time.Duration); ok {
			enc.Fields[k] = d.String()
		}
	}
	lvl := zerolog.InfoLevel
	switch {
	case e.Level >= zapcore.ErrorLevel:
		lvl = zerolog.ErrorLevel
	case e.Level == zapcore.WarnLevel:
		lvl = zerolog.WarnLevel
	}
	c.log.WithLevel(lvl).Str("logger", e.LoggerName).Fields(enc.Fields).Msg(e.Message)
	return nil
}

func (c zerologCore) Sync() error { return nil }

// isValidationFailure reports whether an order failed because the CA could
// not validate a challenge: what Let's Encrypt counts against its failed
// validation limit.
func isValidationFailure(err error) bool {
	var p acme.Problem
	if !errors.As(err, &p) {
		return false
	}
	types := []string{p.Type}
	for _, sub := range p.Subproblems {
		types = append(types, sub.Type)
	}
	for _, t := range types {
		switch strings.TrimPrefix(t, "urn:ietf:params:acme:error:") {
		case "unauthorized", "connection", "dns", "incorrectResponse", "tls", "caa":
			return true
		}
	}
	return false
}

// caList is the directories of the primary CA and its fallbacks, for logs.
func caList(a *IssuerConfig) []string {
	var out []string
	for _, iss := range a.issuers() {
		out = append(out, iss.Directory)
	}
	return out
}
