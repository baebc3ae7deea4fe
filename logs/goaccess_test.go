package logs

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// goaccessGeneral runs the real goaccess binary on path with its
// CLOUDFRONT format and returns the "general" section of its JSON report
// and the lines it found invalid.
func goaccessGeneral(t *testing.T, path string, extra ...string) (total, failed int, invalid []string) {
	t.Helper()
	bin, err := exec.LookPath("goaccess")
	if err != nil {
		t.Fatalf("goaccess is required for this test (apt-get install goaccess, or `make deps`): %v", err)
	}
	dir := t.TempDir()
	out, inv := filepath.Join(dir, "report.json"), filepath.Join(dir, "invalid.txt")
	args := append([]string{path, "--log-format=CLOUDFRONT", "--date-format=CLOUDFRONT", "--time-format=CLOUDFRONT",
		"--invalid-requests=" + inv, "-o", out}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+dir) // no user config
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("goaccess %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		General struct {
			Total  int `json:"total_requests"`
			Failed int `json:"failed_requests"`
		} `json:"general"`
	}
	if err := json.Unmarshal(b, &report); err != nil {
		t.Fatalf("goaccess JSON: %v", err)
	}
	f, err := os.Open(inv)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		invalid = append(invalid, sc.Text())
	}
	return report.General.Total, report.General.Failed, invalid
}

// TestGoAccessReadsEdgeFiles: GoAccess, the usual tool for CloudFront logs,
// reads every line the edge writes. GoAccess validates statuses by default
// and so refuses "000", which CloudFront (and the edge) write when the
// viewer left before a response; with its --no-strict-status option, meant
// for exactly that, it must accept every line, and without it, it must
// refuse nothing but those.
func TestGoAccessReadsEdgeFiles(t *testing.T) {
	recs := edgeRecords(3000)
	dir := writeWithEdgeWriter(t, recs)
	var all strings.Builder
	files, _ := filepath.Glob(filepath.Join(dir, "*.gz"))
	for _, f := range files {
		rc, err := accesslog.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(rc)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if l := sc.Text(); !strings.HasPrefix(l, "#") {
				all.WriteString(l + "\n")
			}
		}
		rc.Close()
	}
	// The files joined under one header, as GoAccess reads plain text.
	path := writeFile(t, filepath.Join(t.TempDir(), "edge.log"), []byte(accesslog.Header()+all.String()))
	var hungUp int
	for _, r := range recs {
		if r.Status == 0 {
			hungUp++
		}
	}
	if hungUp == 0 {
		t.Fatal("test setup: no status 000 lines")
	}

	total, failed, invalid := goaccessGeneral(t, path, "--no-strict-status")
	if total != len(recs) || failed != 0 || len(invalid) != 0 {
		t.Errorf("goaccess --no-strict-status: %d requests, %d invalid (%.200q); want %d and none", total, failed, invalid, len(recs))
	}
	total, failed, invalid = goaccessGeneral(t, path)
	if total != len(recs) || failed != hungUp {
		t.Errorf("goaccess: %d requests, %d invalid; want %d, of which the %d with status 000", total, failed, len(recs), hungUp)
	}
	for _, l := range invalid {
		if f := strings.Split(l, "\t"); len(f) < 9 || f[8] != "000" {
			t.Errorf("goaccess refused a line whose status is not 000: %.300q", l)
		}
	}
}
