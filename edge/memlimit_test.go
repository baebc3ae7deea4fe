package edge

import "testing"

func TestMemoryLimitFollowsTheMemoryTier(t *testing.T) {
	const MiB, GiB = 1 << 20, 1 << 30
	for _, c := range []struct {
		name    string
		cache   string
		ceiling uint64
		want    int64
	}{
		{"default tier (256 MiB)", "", 0, 640 * MiB},
		{"4 GiB tier", "cache: {memory: 4GiB}", 0, 6*GiB + 256*MiB},
		{"a container's limit caps it", "cache: {memory: 4GiB}", 2 * GiB, 9 * 2 * GiB / 10},
		{"a roomy container changes nothing", "cache: {memory: 256MiB}", 8 * GiB, 640 * MiB},
	} {
		cfg, err := ParseConfig("memlimit test", []byte(`edge:
  certificates: {self_signed: [www.example.test]}
  `+c.cache+`
distributions:
  - aliases: [www.example.test]
    origins: [{id: app, domain_name: app.example.test}]
    default_behavior: {target: app}
`))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := cfg.MemoryLimit(c.ceiling); got != c.want {
			t.Errorf("%s: limit %d MiB, want %d MiB", c.name, got/MiB, c.want/MiB)
		}
	}
}
