package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// Reading is split in two so that it runs on every core whatever the
// input: producers (one per file at a time) read a file sequentially,
// decompressing it if needed, and cut it into blocks of whole lines; each
// block carries the number of its first line and the #Fields line in force
// where it starts, so that any worker can parse it with its own
// accesslog.Reader and report malformed lines at their true file and line.
// Workers fold records into their own aggregate, and the aggregates merge
// at the end. Memory is bounded by the blocks in flight, not the input.

const (
	defaultBlockSize = 1 << 20
	// maxHold bounds how far a block grows to hold one long line. The
	// Reader refuses lines over 1 MiB itself; a line without a newline for
	// this long is reported here without being held.
	maxHold = 4 << 20
)

// Options configures Analyze.
type Options struct {
	// Filter selects the records counted; the zero Filter takes all.
	Filter Filter
	// Workers is the number of parsing goroutines; 0 means GOMAXPROCS.
	Workers int
	// BlockSize is the size of one unit of parallel work in bytes; 0 means
	// 1 MiB. Tests make it tiny to exercise block boundaries.
	BlockSize int
	// Stdin is read for the source "-".
	Stdin io.Reader
}

// Analysis is what reading the sources produced, ready for Summarize.
type Analysis struct {
	Sources []Source // what was read, in order
	Filter  Filter   // the filter that selected the records
	// InputErrors are sources that could not be read to their end (missing,
	// unreadable, a truncated gzip stream). What was read before the error
	// is counted.
	InputErrors []error
	agg         *aggregate
}

// Records returns the number of records parsed (matched or filtered out).
func (a *Analysis) Records() int64 { return a.agg.records }

// Malformed returns the number of malformed lines.
func (a *Analysis) Malformed() int64 { return a.agg.malformed }

// Problems returns the first malformed lines, in input order.
func (a *Analysis) Problems() []Problem { return slices.Clone(a.agg.problems) }

// directive is a #Fields line inside a block.
type directive struct {
	line   int // 1-based line number within the block
	header string
}

// block is a run of whole lines of one source.
type block struct {
	src        int
	data       []byte
	buf        *[]byte // returned to the pool after parsing
	first      int     // line number of data's first line in the source
	header     string  // #Fields line in force at the start of data, "" if none yet
	headerLine int     // its line number in the source
	directives []directive
	problems   []Problem // lines the producer itself refused (too long to hold)
}

// Analyze reads every source and returns the merged analysis. It fails only
// when ctx is done, and then returns promptly; unreadable sources are
// reported in InputErrors and malformed lines counted, never fatal.
func Analyze(ctx context.Context, sources []Source, opt Options) (*Analysis, error) {
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	size := opt.BlockSize
	if size <= 0 {
		size = defaultBlockSize
	}
	producers := min(len(sources), max(1, runtime.GOMAXPROCS(0)/2))
	// Buffers are recycled through a free list as large as the blocks that
	// can be in flight (queued, being parsed, being filled), so that the
	// pipeline allocates them once; a sync.Pool would drop them at every GC.
	pool := &bufPool{free: make(chan *[]byte, 2*workers+producers), size: size}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	blocks := make(chan *block, workers)
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range sources {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()

	var (
		pwg     sync.WaitGroup
		errMu   sync.Mutex
		srcErrs = make(map[int]error)
	)
	for range producers {
		pwg.Go(func() {
			for i := range next {
				p := &producer{ctx: ctx, src: i, name: sources[i].Name, size: size, pool: pool, out: blocks}
				if err := p.run(sources[i], opt.Stdin); err != nil {
					errMu.Lock()
					srcErrs[i] = err
					errMu.Unlock()
				}
			}
		})
	}
	go func() {
		pwg.Wait()
		close(blocks)
	}()

	aggs := make([]*aggregate, workers)
	var wwg sync.WaitGroup
	for w := range workers {
		aggs[w] = newAggregate()
		wwg.Go(func() {
			for {
				select {
				case b, ok := <-blocks:
					if !ok {
						return
					}
					parseBlock(aggs[w], b, sources[b.src].Name, &opt.Filter)
					pool.put(b.buf)
				case <-ctx.Done():
					// Return at once; producers stop at their next block.
					// One blocked in a read of standard input stays so
					// until the input ends, which a command exiting after
					// Ctrl-C does not wait for.
					return
				}
			}
		})
	}
	wwg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading logs: %w", context.Cause(ctx))
	}
	total := aggs[0]
	for _, a := range aggs[1:] {
		total.merge(a)
	}
	an := &Analysis{Sources: sources, Filter: opt.Filter, agg: total}
	for i := range sources {
		if err := srcErrs[i]; err != nil {
			an.InputErrors = append(an.InputErrors, err)
		}
	}
	return an, nil
}

// bufPool is a bounded free list of block buffers.
type bufPool struct {
	free chan *[]byte
	size int
}

func (p *bufPool) get() *[]byte {
	select {
	case b := <-p.free:
		return b
	default:
		b := make([]byte, 0, p.size)
		return &b
	}
}

func (p *bufPool) put(b *[]byte) {
	if cap(*b) > maxHold { // a buffer grown for one long line is not kept
		return
	}
	*b = (*b)[:0]
	select {
	case p.free <- b:
	default:
	}
}

// producer cuts one source into blocks.
type producer struct {
	ctx  context.Context
	src  int
	name string
	size int
	pool *bufPool
	out  chan<- *block

	line       int    // number of the next line to cut
	header     string // #Fields line in force at the next line
	headerLine int    // its line number
}

// run reads the source to its end and sends its blocks.
func (p *producer) run(src Source, stdin io.Reader) (err error) {
	rc, err := open(src, stdin)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil && !src.Stdin {
			err = fmt.Errorf("access log %s: %w", p.name, cerr)
		}
	}()
	p.line = 1
	var tail []byte // the start of a line cut at the end of the last buffer
	for {
		bp := p.pool.get()
		buf, rerr := fill(rc, append((*bp)[:0], tail...))
		for rerr == nil && len(buf) < maxHold && bytes.IndexByte(buf, '\n') < 0 {
			// One line fills the buffer: grow it, up to maxHold.
			bigger := make([]byte, len(buf), 2*cap(buf))
			copy(bigger, buf)
			buf, rerr = fill(rc, bigger)
		}
		*bp = buf
		eof := errors.Is(rerr, io.EOF)
		if rerr != nil && !eof {
			// Count the whole lines read before the failure.
			p.send(bp, buf[:bytes.LastIndexByte(buf, '\n')+1], nil)
			return fmt.Errorf("access log %s: after line %d: %w", p.name, p.line-1, rerr)
		}
		if rerr == nil && bytes.IndexByte(buf, '\n') < 0 {
			// A line longer than maxHold: report it and skip to its end.
			prob := Problem{File: p.name, Line: p.line, src: p.src,
				Message: fmt.Sprintf("line longer than %d bytes, skipped", maxHold)}
			rest, derr := discardLine(rc, buf[:cap(buf)])
			tail = append(tail[:0], rest...)
			if !p.send(bp, nil, []Problem{prob}) {
				return nil
			}
			p.line++
			if errors.Is(derr, io.EOF) && len(tail) == 0 {
				return nil
			}
			if derr != nil && !errors.Is(derr, io.EOF) {
				return fmt.Errorf("access log %s: line %d: %w", p.name, p.line-1, derr)
			}
			continue
		}
		cut := len(buf)
		if !eof {
			cut = bytes.LastIndexByte(buf, '\n') + 1
		}
		tail = append(tail[:0], buf[cut:]...)
		if !p.send(bp, buf[:cut], nil) || eof {
			return nil
		}
	}
}

// fill reads into buf up to its capacity or the end of the input.
func fill(r io.Reader, buf []byte) ([]byte, error) {
	for len(buf) < cap(buf) {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// discardLine reads r up to and including the next newline, using scratch,
// and returns the bytes read after that newline (a copy).
func discardLine(r io.Reader, scratch []byte) ([]byte, error) {
	for {
		n, err := r.Read(scratch)
		if i := bytes.IndexByte(scratch[:n], '\n'); i >= 0 {
			return slices.Clone(scratch[i+1 : n]), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// send scans data for #Fields lines and line count, and sends the block.
// It reports false when the analysis was cancelled.
func (p *producer) send(bp *[]byte, data []byte, probs []Problem) bool {
	b := &block{src: p.src, data: data, buf: bp, first: p.line, header: p.header, headerLine: p.headerLine, problems: probs}
	// Directive lines start with "#"; our writer and CloudFront escape "#"
	// inside values, so this scan rarely stops anywhere else.
	for i := 0; i < len(data); {
		j := bytes.IndexByte(data[i:], '#')
		if j < 0 {
			break
		}
		j += i
		i = j + 1
		if j > 0 && data[j-1] != '\n' {
			continue
		}
		end := bytes.IndexByte(data[j:], '\n')
		if end < 0 {
			end = len(data) - j
		}
		line := bytes.TrimSuffix(data[j:j+end], []byte{'\r'})
		if len(line) < 8 || !strings.EqualFold(string(line[:8]), "#fields:") || !validFields(line) {
			continue
		}
		rel := bytes.Count(data[:j], []byte{'\n'}) + 1
		p.header, p.headerLine = string(line), p.line+rel-1
		b.directives = append(b.directives, directive{line: rel, header: p.header})
	}
	n := bytes.Count(data, []byte{'\n'})
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++ // a last line without newline
	}
	p.line += n
	select {
	case p.out <- b:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// validFields reports whether the Reader accepts line as a #Fields line, so
// that the producer's idea of the header in force is the Reader's.
func validFields(line []byte) bool {
	rd := accesslog.NewReader(io.MultiReader(bytes.NewReader(line), strings.NewReader("\n")), "")
	_, err := rd.Next()
	return errors.Is(err, io.EOF)
}

// hasTTFB reports whether a #Fields line lists time-to-first-byte.
func hasTTFB(header string) bool {
	return strings.Contains(strings.ToLower(header), " time-to-first-byte")
}

// parseBlock parses one block into agg.
func parseBlock(agg *aggregate, b *block, name string, f *Filter) {
	for _, p := range b.problems {
		agg.problem(p)
	}
	if len(b.data) == 0 {
		return
	}
	var in io.Reader = bytes.NewReader(b.data)
	prefix := 0
	if b.header != "" {
		in = io.MultiReader(strings.NewReader(b.header), strings.NewReader("\n"), in)
		prefix = 1
	}
	ttfb := hasTTFB(b.header)
	dirs := b.directives
	rd := accesslog.NewReader(in, name)
	// abs turns a line number of this Reader into one of the source.
	abs := func(line int) int {
		if line <= prefix {
			return b.headerLine
		}
		return b.first + line - prefix - 1
	}
	filtered := !f.Empty()
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		var le *accesslog.LineError
		if errors.As(err, &le) {
			agg.problem(Problem{File: name, Line: abs(le.Line), Message: fixFieldsLine(le.Err.Error(), abs), src: b.src})
			continue
		}
		if err != nil {
			// Reading from memory cannot fail; count it rather than lose
			// the rest silently.
			agg.problem(Problem{File: name, Line: abs(rd.Line()), Message: err.Error(), src: b.src})
			return
		}
		agg.records++
		rel := rd.Line() - prefix
		for len(dirs) > 0 && dirs[0].line < rel {
			ttfb = hasTTFB(dirs[0].header)
			dirs = dirs[1:]
		}
		if filtered && !f.Match(rec) {
			continue
		}
		has := ttfb
		if b.header == "" && len(b.directives) == 0 {
			// No #Fields line: the Reader went by the field count.
			has = len(rd.Fields()) >= 28
		}
		agg.add(rec, has)
	}
}

// fixFieldsLine corrects the line number in the Reader's "as listed by
// #Fields on line N": the Reader counts from the start of the block (whose
// first line may be the #Fields line repeated), the user from the start of
// the file.
func fixFieldsLine(msg string, abs func(int) int) string {
	const marker = "#Fields on line "
	i := strings.LastIndex(msg, marker)
	if i < 0 {
		return msg
	}
	n, err := strconv.Atoi(msg[i+len(marker):])
	if err != nil {
		return msg
	}
	return msg[:i+len(marker)] + strconv.Itoa(abs(n))
}
