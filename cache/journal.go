package cache

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The journal is a file of JSON lines, one per invalidation, appended and
// fsynced before an invalidation counts as durable; a first line may carry
// the horizon (records forgotten before it). A torn last line (a crash
// mid-append) is skipped on load. It is rewritten (temp, fsync, rename)
// when records pass their retention.
type journalLine struct {
	Invalidation
	Horizon int64 `json:"horizon,omitempty"`
}

// loadJournal applies the journal's records (at start, before any use).
func (v *Invalidator) loadJournal() {
	if v.o.Journal == "" {
		return
	}
	f, err := os.Open(v.o.Journal)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		v.o.Logger.Error().Err(err).Msg("cache: cannot read the invalidation journal")
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	cutoff := v.o.Now().Add(-v.o.Retention)
	for sc.Scan() {
		var l journalLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // torn by a crash
		}
		v.horizon = max(v.horizon, l.Horizon)
		if l.ID != "" && !v.recs.has(l.ID) && l.CreateTime.After(cutoff) {
			v.addLocked(l.Invalidation)
		}
	}
}

// journal appends records and fsyncs them.
func (v *Invalidator) journal(invs ...Invalidation) error {
	if v.o.Journal == "" {
		return nil
	}
	var lines []byte
	for _, inv := range invs {
		line, err := json.Marshal(journalLine{Invalidation: inv})
		if err != nil {
			return err
		}
		lines = append(append(lines, line...), '\n')
	}
	v.jmu.Lock()
	defer v.jmu.Unlock()
	if err := os.MkdirAll(filepath.Dir(v.o.Journal), 0o750); err != nil {
		return fmt.Errorf("invalidation journal: %w", err)
	}
	f, err := os.OpenFile(v.o.Journal, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("invalidation journal: %w", err)
	}
	_, err = f.Write(lines)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("invalidation journal %s: %w", v.o.Journal, err)
	}
	return nil
}

// rewriteJournal replaces the journal with recs and the horizon.
func (v *Invalidator) rewriteJournal(recs []Invalidation, horizon int64) error {
	if v.o.Journal == "" {
		return nil
	}
	v.jmu.Lock()
	defer v.jmu.Unlock()
	tmp := v.o.Journal + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	err = enc.Encode(journalLine{Horizon: horizon, Invalidation: Invalidation{CreateTime: time.Unix(0, horizon)}})
	for _, r := range recs {
		if err == nil {
			err = enc.Encode(journalLine{Invalidation: r})
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, v.o.Journal)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
