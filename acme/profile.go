package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// ErrUnknownProfile is wrapped by CheckProfile when the CA does not offer
// the configured profile.
var ErrUnknownProfile = errors.New("unknown profile")

// Profiles fetches the CA's ACME directory and returns the certificate
// profiles it advertises in meta.profiles (name → description); none when
// the CA has no profiles.
func Profiles(ctx context.Context, a *IssuerConfig) (map[string]string, error) {
	client, err := directoryClient(a.TrustedRoots)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.Directory, nil)
	if err != nil {
		return nil, fmt.Errorf("directory %s: %w", a.Directory, err)
	}
	req.Header.Set("User-Agent", "edgegate")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("directory %s: %w", a.Directory, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("directory %s: %s", a.Directory, resp.Status)
	}
	var dir struct {
		Meta struct {
			Profiles map[string]string `json:"profiles"`
		} `json:"meta"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&dir); err != nil {
		return nil, fmt.Errorf("directory %s: %w", a.Directory, err)
	}
	return dir.Meta.Profiles, nil
}

// CheckProfile confirms that the CA offers a.Profile (nothing to check
// when it is empty). An unknown profile is an error naming the profiles
// the CA offers, wrapping ErrUnknownProfile.
func CheckProfile(ctx context.Context, a *IssuerConfig) error {
	if a == nil || a.Profile == "" {
		return nil
	}
	offered, err := Profiles(ctx, a)
	if err != nil {
		return fmt.Errorf("cannot check profile %q: %w", a.Profile, err)
	}
	if _, ok := offered[a.Profile]; ok {
		return nil
	}
	names := make([]string, 0, len(offered))
	for n := range offered {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return fmt.Errorf("%w %q: the CA at %s offers no profiles (remove profile)", ErrUnknownProfile, a.Profile, a.Directory)
	}
	return fmt.Errorf("%w %q: the CA at %s offers %s", ErrUnknownProfile, a.Profile, a.Directory, strings.Join(names, ", "))
}

// directoryClient is an HTTPS client trusting the configured roots (the
// system's when none).
func directoryClient(trustedRoots string) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if trustedRoots != "" {
		pem, err := os.ReadFile(trustedRoots)
		if err != nil {
			return nil, fmt.Errorf("trusted_roots: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("trusted_roots %s: no PEM certificate in it", trustedRoots)
		}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment}, Timeout: 15 * time.Second}, nil
}
