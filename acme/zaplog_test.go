package acme

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/zap"
)

// certmagic's zap fields reach the operational log with their units:
// durations as Go duration strings, not bare milliseconds.
func TestZapDurationsCarryUnits(t *testing.T) {
	var buf bytes.Buffer
	log := zap.New(zerologCore{log: zerolog.New(&buf)}).Named("obtain")
	log.With(zap.Duration("max_duration", 30*24*time.Hour)).Error("will retry",
		zap.Duration("retrying_in", time.Minute), zap.Duration("elapsed", 5016460*time.Microsecond), zap.Int("attempt", 2))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	for k, want := range map[string]any{"retrying_in": "1m0s", "elapsed": "5.01646s", "max_duration": "720h0m0s",
		"attempt": 2.0, "logger": "obtain", "level": "error", "message": "will retry"} {
		if line[k] != want {
			t.Errorf("%s = %#v, want %#v (line %s)", k, line[k], want, buf.String())
		}
	}
}
