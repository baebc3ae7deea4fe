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
	Stdin bool
}

// Expand turns command-line arguments into sources: a file stands for
// itself, a directory for every file below it (recursively, in name order,
// skipping hidden names and the writer's *.tmp files), "-" for standard
// input (at most once). A missing path is an error naming it.
func Expand(args []string) ([]Source, error) {
	var out []Source
	stdin := false
	for _, arg := range args {
		if arg == "-" {
			if stdin {
				return nil, errors.New(`"-" (standard input) given twice`)
			}
			stdin = true
			out = append(out, Source{Name: "-", Stdin: true})
			continue
		}
		info, err := os.Stat(arg)
		if err != nil {
			return nil, fmt.Errorf("log input: %w", err)
		}
		if !info.IsDir() {
			out = append(out, Source{Name: arg})
			continue
		}
		n := len(out)
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
			out = append(out, Source{Name: path})
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(out) == n {
			return nil, fmt.Errorf("log input %s: %w in the directory", arg, errNoInput)
		}
	}
	if len(out) == 0 {
		return nil, errNoInput
	}
	return out, nil
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
