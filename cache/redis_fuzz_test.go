package cache

import (
	"errors"
	"testing"
)

// FuzzRedisMeta decodes any bytes as the Redis tier's object metadata and
// any string as a sealed body chunk: never a panic; a damaged value is
// ErrCorrupt (read as a miss), never a wrong body; metadata that decodes
// encodes back to the same bytes; a chunk opens only with its own checksum.
// Seeds: metadata and chunks the tier writes for small and chunked bodies.
func FuzzRedisMeta(f *testing.F) {
	f.Fuzz(func(t *testing.T, meta []byte, chunk string) {
		if m, err := decodeMeta(meta); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not wrapping ErrCorrupt: %v", err)
			}
		} else {
			if m.chunks < 0 || m.bodyLen < 0 || (m.chunks == 0 && len(m.entry.Body) != m.bodyLen) {
				t.Fatalf("inconsistent metadata accepted: %d chunks, %d bytes, body %d", m.chunks, m.bodyLen, len(m.entry.Body))
			}
			if _, err := decodeMeta(encodeMeta(m, &m.entry)); err != nil {
				t.Fatalf("decoded metadata does not decode once encoded again: %v", err)
			}
		}
		if data, ok := openChunk(chunk); ok {
			if string(sealChunk([]byte(data))) != chunk {
				t.Fatalf("chunk %q opened with a checksum that is not its own", chunk)
			}
		}
		if data, ok := openChunk(string(sealChunk([]byte(chunk)))); !ok || data != chunk {
			t.Fatalf("a sealed chunk does not open to its data: %q %v", data, ok)
		}
	})
}
