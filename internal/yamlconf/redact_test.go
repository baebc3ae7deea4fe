package yamlconf

import (
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	type origin struct {
		ID            string            `yaml:"id"`
		CustomHeaders map[string]string `yaml:"custom_headers"`
	}
	cfg := struct {
		Token   string                  `yaml:"token"`
		Redis   string                  `yaml:"redis"`
		TSIG    struct{ Secret string } `yaml:"tsig"`
		Origins []origin                `yaml:"origins"`
		Listen  string                  `yaml:"listen"`
	}{
		Token: "s3cret-token", Redis: "redis://user:pa55@redis.internal:6379/0", Listen: "127.0.0.1:9901",
		Origins: []origin{{ID: "alb", CustomHeaders: map[string]string{"X-Origin-Verify": "shared-origin-secret"}}},
	}
	cfg.TSIG.Secret = "tsig-key"
	out, err := Redacted(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, secret := range []string{"s3cret-token", "pa55", "tsig-key", "shared-origin-secret"} {
		if strings.Contains(s, secret) {
			t.Errorf("%q shown:\n%s", secret, s)
		}
	}
	for _, kept := range []string{"127.0.0.1:9901", "X-Origin-Verify: REDACTED", "redis.internal:6379", "id: alb"} {
		if !strings.Contains(s, kept) {
			t.Errorf("%q missing:\n%s", kept, s)
		}
	}
}
