package logs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// FuzzAnalyzeBlocks: the parallel analyser, which cuts its input into
// blocks at line ends and parses them apart (carrying the #Fields line in
// force across), counts exactly the records and malformed lines that one
// sequential accesslog.Reader finds in the same bytes, whatever the
// content and wherever the block boundaries fall. Seeds: the CloudFront
// files of every era in testdata/.
func FuzzAnalyzeBlocks(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, block uint16, workers uint8) {
		var records, malformed int64
		rd := accesslog.NewReader(bytes.NewReader(data), "-")
		for {
			_, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			var le *accesslog.LineError
			if errors.As(err, &le) {
				malformed++
				continue
			}
			if err != nil {
				t.Fatalf("sequential reader: %v", err)
			}
			records++
		}
		longest := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			longest = max(longest, len(l))
		}
		opt := Options{Stdin: bytes.NewReader(data), BlockSize: longest + 2 + int(block)%512, Workers: 1 + int(workers)%4}
		a, err := Analyze(context.Background(), []Source{{Name: "-", Stdin: true}}, opt)
		if err != nil {
			t.Fatal(err)
		}
		if a.Records() != records || a.Malformed() != malformed {
			t.Fatalf("blocks of %d bytes: %d records and %d malformed, the sequential reader %d and %d",
				opt.BlockSize, a.Records(), a.Malformed(), records, malformed)
		}
	})
}
