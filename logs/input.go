package logs

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// Source is one input stream: a file or standard input.
type Source struct {
	Name  string // as shown in messages: the path, or "-" for standard input
	Stdin bool   // read Options.Stdin rather than a file
}

// Expand turns command-line arguments into sources: a file stands for
// itself whatever its name; a directory for the files below it that look
// like logs (*.log, *.gz, *.log.N), recursively and in name order, skipping
// hidden names and the writer's *.tmp files; "-" for standard input (at
// most once). Files of a directory that were left out are returned in
// skipped, so that the caller can say so. A missing path is an error naming
// it.
func Expand(args []string) (sources []Source, skipped []string, err error) {
	stdin := false
	for _, arg := range args {
		if arg == "-" {
			if stdin {
				return nil, nil, errors.New(`"-" (standard input) given twice`)
			}
			stdin = true
			sources = append(sources, Source{Name: "-", Stdin: true})
			continue
		}
		info, err := os.Stat(arg)
		if err != nil {
			return nil, nil, fmt.Errorf("log input: %w", err)
		}
		if !info.IsDir() {
			sources = append(sources, Source{Name: arg})
			continue
		}
		n := len(sources)
		err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("log input: %w", err)
			}
			name := d.Name()
			if path != arg && strings.HasPrefix(name, ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || strings.HasSuffix(name, ".tmp") {
				return nil
			}
			if !d.Type().IsRegular() {
				// A symlink or other special file: read it if it leads
				// to a regular file.
				if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
					return nil
				}
			}
			if !looksLikeLog(name) {
				skipped = append(skipped, path)
				return nil
			}
			sources = append(sources, Source{Name: path})
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		if len(sources) == n {
			return nil, nil, fmt.Errorf("log input %s: %w in the directory (*.log, *.gz)", arg, errNoInput)
		}
	}
	if len(sources) == 0 {
		return nil, nil, errNoInput
	}
	return sources, skipped, nil
}

// looksLikeLog tells the files of a directory that are read: the edge's
// (*.log, *.gz), CloudFront's (*.gz) and rotated ones (access.log.1).
func looksLikeLog(name string) bool {
	return strings.HasSuffix(name, ".log") || strings.HasSuffix(name, ".gz") || strings.Contains(name, ".log.")
}

// open opens a source, decompressing gzip (recognised by its magic bytes,
// for files and standard input alike).
func open(src Source, stdin io.Reader) (io.ReadCloser, error) {
	if !src.Stdin {
		return accesslog.Open(src.Name)
	}
	if stdin == nil {
		return nil, errors.New("standard input: not available")
	}
	br := bufio.NewReaderSize(stdin, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("standard input: %w", err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("standard input: %w", err)
		}
		return zr, nil
	}
	return io.NopCloser(br), nil
}
