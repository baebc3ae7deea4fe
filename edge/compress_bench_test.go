package edge

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// compressionCorpus is real web text shipped with Go: an HTML document,
// minified JavaScript and readable JavaScript.
func compressionCorpus(b *testing.B) [][]byte {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Fatalf("go env GOROOT: %v", err)
	}
	root := strings.TrimSpace(string(out))
	var corpus [][]byte
	for _, f := range []string{"doc/go_spec.html", "src/internal/trace/traceviewer/static/webcomponents.min.js", "lib/wasm/wasm_exec.js"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			b.Fatalf("corpus: %v", err)
		}
		corpus = append(corpus, data)
	}
	return corpus
}

func encodeAt(b *testing.B, coding string, level int, zenc *zstd.Encoder, data []byte) int {
	var buf bytes.Buffer
	switch coding {
	case "gzip":
		w, err := gzip.NewWriterLevel(&buf, level)
		if err != nil {
			b.Fatal(err)
		}
		w.Write(data)
		w.Close()
	case "br":
		w := brotli.NewWriterLevel(&buf, level)
		w.Write(data)
		w.Close()
	case "zstd":
		return len(zenc.EncodeAll(data, nil)) // one encoder reused, as the edge does
	}
	return buf.Len()
}

// BenchmarkCompressionLevels reports, per coding and level, the speed
// (MB/s of input) and the share of bytes saved on the corpus, from which
// brotliLevel, gzipLevel and zstdLevel are chosen:
//
//	go test ./edge/ -run - -bench CompressionLevels -benchtime 5x
func BenchmarkCompressionLevels(b *testing.B) {
	corpus := compressionCorpus(b)
	var total int
	for _, d := range corpus {
		total += len(d)
	}
	for _, c := range []struct {
		coding string
		levels []int
	}{
		{"gzip", []int{1, 4, 6, 9}},
		{"br", []int{1, 4, 5, 6, 8, 11}},
		{"zstd", []int{int(zstd.SpeedFastest), int(zstd.SpeedDefault), int(zstd.SpeedBetterCompression), int(zstd.SpeedBestCompression)}},
	} {
		for _, level := range c.levels {
			b.Run(fmt.Sprintf("%s/%d", c.coding, level), func(b *testing.B) {
				var zenc *zstd.Encoder
				if c.coding == "zstd" {
					var err error
					if zenc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevel(level)), zstd.WithEncoderConcurrency(1)); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(int64(total))
				var out int
				for b.Loop() {
					out = 0
					for _, d := range corpus {
						out += encodeAt(b, c.coding, level, zenc, d)
					}
				}
				b.ReportMetric(100*(1-float64(out)/float64(total)), "%saved")
			})
		}
	}
}
