package accesslog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// maxLineLen bounds one line. CloudFront refuses requests whose headers
// exceed 20 KiB or whose URL exceeds 8 KiB, so a real line is far shorter;
// a longer one is garbage and is reported, not buffered without end.
const maxLineLen = 1 << 20

// maxInterned bounds the per-Reader table of repeated values.
const maxInterned = 4096

// Field identifiers, one per known field name; the first 33 are in
// CloudFront order so that a file without a #Fields line (lines cut out
// with grep) can be read by position.
const (
	fDate = iota
	fTime
	fLocation
	fBytesSent
	fClientIP
	fMethod
	fHost
	fURIStem
	fStatus
	fReferer
	fUserAgent
	fQuery
	fCookie
	fResultType
	fRequestID
	fHostHeader
	fProtocol
	fBytesReceived
	fTimeTaken
	fForwardedFor
	fSSLProtocol
	fSSLCipher
	fResponseResultType
	fProtocolVersion
	fFLEStatus
	fFLEEncryptedFields
	fClientPort
	fTimeToFirstByte
	fDetailedResultType
	fContentType
	fContentLength
	fRangeStart
	fRangeEnd
	fDistributionTenantID // 34th field of newer files
	fConnectionID         // 35th field of newer files
	fTimestamp            // standard logging v2: epoch seconds with decimals
	fTimestampMs          // standard logging v2: epoch milliseconds
	fUnknown              // any other field: kept, reachable through Reader.Field
)

// fieldID maps a #Fields name to its identifier. Names are compared without
// regard to case because hand-made headers are not always exact.
func fieldID(name string) int {
	switch strings.ToLower(name) {
	case "date":
		return fDate
	case "time":
		return fTime
	case "x-edge-location":
		return fLocation
	case "sc-bytes":
		return fBytesSent
	case "c-ip":
		return fClientIP
	case "cs-method":
		return fMethod
	case "cs(host)":
		return fHost
	case "cs-uri-stem":
		return fURIStem
	case "sc-status":
		return fStatus
	case "cs(referer)":
		return fReferer
	case "cs(user-agent)":
		return fUserAgent
	case "cs-uri-query":
		return fQuery
	case "cs(cookie)":
		return fCookie
	case "x-edge-result-type":
		return fResultType
	case "x-edge-request-id":
		return fRequestID
	case "x-host-header":
		return fHostHeader
	case "cs-protocol":
		return fProtocol
	case "cs-bytes":
		return fBytesReceived
	case "time-taken":
		return fTimeTaken
	case "x-forwarded-for":
		return fForwardedFor
	case "ssl-protocol":
		return fSSLProtocol
	case "ssl-cipher":
		return fSSLCipher
	case "x-edge-response-result-type":
		return fResponseResultType
	case "cs-protocol-version":
		return fProtocolVersion
	case "fle-status":
		return fFLEStatus
	case "fle-encrypted-fields":
		return fFLEEncryptedFields
	case "c-port":
		return fClientPort
	case "time-to-first-byte":
		return fTimeToFirstByte
	case "x-edge-detailed-result-type":
		return fDetailedResultType
	case "sc-content-type":
		return fContentType
	case "sc-content-len":
		return fContentLength
	case "sc-range-start":
		return fRangeStart
	case "sc-range-end":
		return fRangeEnd
	case "distribution-tenant-id":
		return fDistributionTenantID
	case "connection-id":
		return fConnectionID
	case "timestamp":
		return fTimestamp
	case "timestamp(ms)":
		return fTimestampMs
	}
	return fUnknown
}

// implicitNames returns the field list assumed for a line of n fields in a
// stream without a #Fields line, or nil when n matches no CloudFront era.
// Fields were only ever appended, so every era is a prefix of the newest.
func implicitNames(n int) []string {
	switch n {
	case 23, 24, 26, 33:
		return FieldNames()[:n]
	case 34:
		return append(FieldNames(), "distribution-tenant-id")
	case 35:
		return append(FieldNames(), "distribution-tenant-id", "connection-id")
	}
	return nil
}

// LineError is a malformed line. The Reader returns it from Next and goes on
// with the following line on the next call, so one bad line never hides the
// rest of a file.
type LineError struct {
	File string // the name given to NewReader
	Line int    // 1-based physical line number, header lines included
	Err  error  // what is wrong
}

// Error formats the problem as "FILE:LINE: problem".
func (e *LineError) Error() string {
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Err.Error()
}

// Unwrap returns the underlying problem.
func (e *LineError) Unwrap() error { return e.Err }

// Reader reads standard log lines, ours or CloudFront's, plain text (see Open
// for gzip). The field order comes from each #Fields line, so files of every
// CloudFront era and concatenations of several files read correctly; before
// any #Fields line, a line is read by position if its field count is that of
// a CloudFront era (23, 24, 26, 33, 34 or 35), which lets `grep` output be
// analysed.
//
// Decoding: every text field is percent-decoded once (an invalid escape is
// kept as it is). CloudFront wrote User-Agent encoded twice until 2019
// (a space appears as %2520); so for a record dated before 2020 whose
// once-decoded User-Agent still looks encoded — it has at least one %XX, every
// "%" starts a valid %XX, and it holds no byte that the encoding escapes —
// the User-Agent is decoded a second time. Later records (ours included) are
// decoded exactly once, so our own records read back exactly as written.
//
// Fields that a file does not have keep their Reset value (zero, or -1 for
// ContentLength, RangeStart and RangeEnd); Fields tells which are present.
// A value "-" reads as empty, or 0 for numbers. A stray tab at the end of a
// line, a "\r\n" line ending and blank lines are accepted.
type Reader struct {
	br   *bufio.Reader
	name string
	line int   // physical number of the last line read
	err  error // sticky: set once the input is exhausted or broken

	names    []string       // field names in column order (from #Fields, or implied)
	cols     []int          // field identifier per column
	explicit bool           // names come from a #Fields line
	fieldsAt int            // line of the #Fields line in force
	index    map[string]int // lower-cased name → column, built on demand by Field

	rec     Record
	buf     []byte // the current record line (without newline)
	long    []byte // accumulates lines longer than the bufio buffer
	scratch []byte // percent-decoding buffer
	intern  map[string]string
}

// NewReader returns a Reader of r; name (a file name, or "-" for stdin)
// prefixes every error so the user can find the line at fault.
func NewReader(r io.Reader, name string) *Reader {
	return &Reader{
		br:     bufio.NewReaderSize(r, 64<<10),
		name:   name,
		intern: make(map[string]string),
	}
}

// Next returns the next record, io.EOF at the end of the input, a *LineError
// for a malformed line (call Next again to go on with the following line),
// or another error when the input itself fails (a truncated gzip stream),
// after which Next keeps returning that error.
//
// The returned *Record belongs to the Reader and is overwritten by the next
// call to Next, so that reading a large file allocates little; copy the
// Record (a plain struct copy) to keep it.
func (r *Reader) Next() (*Record, error) {
	for {
		if r.err != nil {
			return nil, r.err
		}
		raw, err := r.readLine()
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				return nil, &LineError{File: r.name, Line: r.line, Err: err}
			}
			r.err = err
			continue
		}
		if n := len(raw); n > 0 && raw[n-1] == '\r' {
			raw = raw[:n-1]
		}
		if len(raw) == 0 {
			continue
		}
		if raw[0] == '#' {
			if err := r.directive(raw); err != nil {
				return nil, &LineError{File: r.name, Line: r.line, Err: err}
			}
			continue
		}
		if err := r.parse(raw); err != nil {
			return nil, &LineError{File: r.name, Line: r.line, Err: err}
		}
		return &r.rec, nil
	}
}

// Line returns the line number of the line last returned by Next.
func (r *Reader) Line() int { return r.line }

// Fields returns the field names in force for the last record, in column
// order: those of the last #Fields line, or those implied by the field count
// of a header-less line. The slice is a copy.
func (r *Reader) Fields() []string {
	return append([]string(nil), r.names...)
}

// Field returns the decoded value of the named field (case-insensitive) on
// the line of the last record, including fields that Record has no place for
// (distribution-tenant-id, connection-id, the v2 fields c-country, asn, ...).
// It reports false when the file has no such field; "-" reads as "".
func (r *Reader) Field(name string) (string, bool) {
	if r.index == nil {
		r.index = make(map[string]int, len(r.names))
		for i, n := range r.names {
			r.index[strings.ToLower(n)] = i
		}
	}
	col, ok := r.index[strings.ToLower(name)]
	if !ok {
		return "", false
	}
	rest := r.buf
	for range col {
		i := bytes.IndexByte(rest, '\t')
		if i < 0 {
			return "", false
		}
		rest = rest[i+1:]
	}
	if i := bytes.IndexByte(rest, '\t'); i >= 0 {
		rest = rest[:i]
	}
	if isDash(rest) {
		return "", true
	}
	return string(r.unescape(rest)), true
}

var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLineLen)

// readLine returns the next line without its "\n", valid until the next
// call. Beyond maxLineLen the rest of the line is skipped and errLineTooLong
// returned, so that one runaway line costs a LineError, not the file.
func (r *Reader) readLine() ([]byte, error) {
	r.long = r.long[:0]
	tooLong := false
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(r.long)+len(chunk) > maxLineLen+1 { // +1: the "\n"
			tooLong, r.long = true, r.long[:0]
		}
		switch {
		case err == nil:
			r.line++
			if tooLong {
				return nil, errLineTooLong
			}
			if len(r.long) == 0 {
				return chunk[:len(chunk)-1], nil
			}
			r.long = append(r.long, chunk[:len(chunk)-1]...)
			return r.long, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong {
				r.long = append(r.long, chunk...)
			}
		case errors.Is(err, io.EOF):
			if len(chunk) == 0 && len(r.long) == 0 && !tooLong {
				return nil, io.EOF
			}
			// A last line without "\n": read it; a torn line fails to
			// parse and is reported, not dropped.
			r.line++
			if tooLong {
				return nil, errLineTooLong
			}
			return append(r.long, chunk...), nil
		default:
			return nil, fmt.Errorf("access log %s: after line %d: %w", r.name, r.line, err)
		}
	}
}

// directive handles a "#" line: #Fields sets the column order, #Version and
// anything else are accepted and ignored.
func (r *Reader) directive(raw []byte) error {
	const prefix = "#fields:"
	if len(raw) < len(prefix) || !strings.EqualFold(string(raw[:len(prefix)]), prefix) {
		return nil
	}
	names := strings.Fields(string(raw[len(prefix):]))
	if len(names) == 0 {
		return errors.New("#Fields line lists no fields")
	}
	cols := make([]int, len(names))
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		l := strings.ToLower(n)
		if seen[l] {
			return fmt.Errorf("#Fields line lists %s twice", n)
		}
		seen[l] = true
		cols[i] = fieldID(n)
	}
	r.names, r.cols, r.explicit, r.fieldsAt, r.index = names, cols, true, r.line, nil
	return nil
}

// parse fills r.rec from one record line.
func (r *Reader) parse(raw []byte) error {
	n := bytes.Count(raw, []byte{'\t'}) + 1
	if !r.explicit && n != len(r.cols) && !(n == len(r.cols)+1 && raw[len(raw)-1] == '\t') {
		names := implicitNames(n)
		if names == nil && raw[len(raw)-1] == '\t' {
			names = implicitNames(n - 1) // stray trailing tab
		}
		if names == nil {
			return fmt.Errorf("%d fields and no #Fields line before it; CloudFront lines have 23, 24, 26, 33, 34 or 35", n)
		}
		r.names, r.index = names, nil
		r.cols = make([]int, len(names))
		for i, name := range names {
			r.cols[i] = fieldID(name)
		}
	}
	if n == len(r.cols)+1 && raw[len(raw)-1] == '\t' {
		raw, n = raw[:len(raw)-1], n-1
	}
	if n != len(r.cols) {
		if r.explicit {
			return fmt.Errorf("%d fields, want %d as listed by #Fields on line %d", n, len(r.cols), r.fieldsAt)
		}
		return fmt.Errorf("%d fields, want %d like the lines before it", n, len(r.cols))
	}
	r.buf = append(r.buf[:0], raw...)
	rest := r.buf

	rec := &r.rec
	rec.Reset()
	var (
		date           bool
		y, mo, d       int
		hh, mm, ss     int
		stamp          time.Time
		stamped        bool
		uaEncodedTwice bool
		field          []byte
		wanted         string
	)
	for col, id := range r.cols {
		if i := bytes.IndexByte(rest, '\t'); i >= 0 {
			field, rest = rest[:i], rest[i+1:]
		} else {
			field, rest = rest, nil
		}
		dash := isDash(field)
		ok := true
		switch id {
		case fDate:
			y, mo, d, ok = parseDate(field)
			date, wanted = true, "a date (YYYY-MM-DD)"
		case fTime:
			hh, mm, ss, ok = parseClock(field)
			wanted = "a time (HH:MM:SS)"
		case fTimestamp, fTimestampMs:
			if dash {
				continue
			}
			var ns int64
			if id == fTimestamp {
				var dur time.Duration
				dur, ok = parseSeconds(field)
				ns, wanted = int64(dur), "a Unix time in seconds"
			} else {
				ns, ok = parseInt(field)
				ns, wanted = ns*int64(time.Millisecond), "a Unix time in milliseconds"
			}
			stamp, stamped = time.Unix(0, ns).UTC(), ok
		case fBytesSent:
			rec.BytesSent, ok = parseCount(field, dash)
			wanted = "a byte count"
		case fBytesReceived:
			rec.BytesReceived, ok = parseCount(field, dash)
			wanted = "a byte count"
		case fStatus:
			var s int64
			s, ok = parseCount(field, dash)
			ok = ok && s < 1000
			rec.Status, wanted = int(s), "an HTTP status"
		case fClientPort:
			var p int64
			p, ok = parseCount(field, dash)
			ok = ok && p < 1<<16
			rec.ClientPort, wanted = int(p), "a port"
		case fTimeTaken:
			if !dash {
				rec.TimeTaken, ok = parseSeconds(field)
			}
			wanted = "a duration in seconds"
		case fTimeToFirstByte:
			if !dash {
				rec.TimeToFirstByte, ok = parseSeconds(field)
			}
			wanted = "a duration in seconds"
		case fContentLength:
			rec.ContentLength, ok = parseOptional(field, dash)
			wanted = "a length or -"
		case fRangeStart:
			rec.RangeStart, ok = parseOptional(field, dash)
			wanted = "an offset or -"
		case fRangeEnd:
			rec.RangeEnd, ok = parseOptional(field, dash)
			wanted = "an offset or -"
		case fResultType:
			rec.ResultType = r.result(field, dash)
		case fResponseResultType:
			rec.ResponseResultType = r.result(field, dash)
		case fDetailedResultType:
			rec.DetailedResultType = r.result(field, dash)
		case fUserAgent:
			if !dash {
				once := r.unescape(field)
				uaEncodedTwice = looksEncoded(once)
				rec.UserAgent = string(once)
			}
		default:
			if dash {
				continue
			}
			switch id {
			case fLocation:
				rec.Location = r.text(field, true)
			case fClientIP:
				rec.ClientIP = r.text(field, false)
			case fMethod:
				rec.Method = r.text(field, true)
			case fHost:
				rec.Host = r.text(field, true)
			case fURIStem:
				rec.URIStem = r.text(field, false)
			case fReferer:
				rec.Referer = r.text(field, false)
			case fQuery:
				rec.Query = r.text(field, false)
			case fCookie:
				rec.Cookie = r.text(field, false)
			case fRequestID:
				rec.RequestID = r.text(field, false)
			case fHostHeader:
				rec.HostHeader = r.text(field, true)
			case fProtocol:
				rec.Protocol = r.text(field, true)
			case fForwardedFor:
				rec.ForwardedFor = r.text(field, false)
			case fSSLProtocol:
				rec.SSLProtocol = r.text(field, true)
			case fSSLCipher:
				rec.SSLCipher = r.text(field, true)
			case fProtocolVersion:
				rec.ProtocolVersion = r.text(field, true)
			case fFLEStatus:
				rec.FLEStatus = r.text(field, true)
			case fFLEEncryptedFields:
				rec.FLEEncryptedFields = r.text(field, true)
			case fContentType:
				rec.ContentType = r.text(field, true)
			}
		}
		if !ok {
			return fmt.Errorf("field %d %s: %q is not %s", col+1, r.names[col], field, wanted)
		}
	}
	// A time without a date says nothing usable on its own.
	switch {
	case date:
		rec.Time = time.Date(y, time.Month(mo), d, hh, mm, ss, 0, time.UTC)
	case stamped:
		rec.Time = stamp
	}
	if uaEncodedTwice && !rec.Time.IsZero() && rec.Time.Year() < 2020 {
		rec.UserAgent = string(r.unescape([]byte(rec.UserAgent)))
	}
	return nil
}

// isDash reports the empty-value marker.
func isDash(b []byte) bool { return len(b) == 1 && b[0] == '-' }

// result returns a result type, shared for the documented values.
func (r *Reader) result(b []byte, dash bool) ResultType {
	if dash {
		return ""
	}
	if t, ok := knownResult(b); ok {
		return t
	}
	return ResultType(r.text(b, true))
}

// text decodes a text field. Values from small sets (locations, methods,
// protocols, ciphers, content types) are interned so that a large file does
// not allocate the same few strings on every line.
func (r *Reader) text(b []byte, intern bool) string {
	b = r.unescape(b)
	if !intern {
		return string(b)
	}
	if s, ok := r.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(r.intern) < maxInterned {
		r.intern[s] = s
	}
	return s
}

// unescape percent-decodes b once; an invalid escape is kept literally.
// The result is b itself when there is nothing to decode, else the Reader's
// scratch buffer, valid until the next call.
func (r *Reader) unescape(b []byte) []byte {
	i := bytes.IndexByte(b, '%')
	if i < 0 {
		return b
	}
	out := append(r.scratch[:0], b[:i]...)
	for ; i < len(b); i++ {
		c := b[i]
		if c == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]) {
			out = append(out, unhex(b[i+1])<<4|unhex(b[i+2]))
			i += 2
			continue
		}
		out = append(out, c)
	}
	r.scratch = out
	return out
}

// looksEncoded reports whether b (a once-decoded value) is itself a
// percent-encoded value: it has a %XX, every "%" starts one, and it has no
// byte that the encoding would have escaped. A value decoded from a single
// encoding almost always has a space or other such byte, which is what makes
// the double-decoding of old User-Agents safe.
func looksEncoded(b []byte) bool {
	found := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '%' {
			if i+2 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) {
				return false
			}
			found = true
			i += 2
			continue
		}
		if mustEscape(c) {
			return false
		}
	}
	return found
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// parseDate parses YYYY-MM-DD and checks that the day exists.
func parseDate(b []byte) (y, m, d int, ok bool) {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return 0, 0, 0, false
	}
	y, ok1 := digits(b[0:4])
	m, ok2 := digits(b[5:7])
	d, ok3 := digits(b[8:10])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 {
		return 0, 0, 0, false
	}
	// Day 0 of the next month is the last day of this one.
	if d > time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// parseClock parses HH:MM:SS.
func parseClock(b []byte) (h, m, s int, ok bool) {
	if len(b) != 8 || b[2] != ':' || b[5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := digits(b[0:2])
	m, ok2 := digits(b[3:5])
	s, ok3 := digits(b[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || s > 59 {
		return 0, 0, 0, false
	}
	return h, m, s, true
}

// digits parses a short run of ASCII digits.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}

// parseInt parses a non-negative decimal integer of at most 18 digits (no
// overflow possible).
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseCount parses a count where "-" means 0 (CloudFront's 2014 example
// has cs-bytes "-").
func parseCount(b []byte, dash bool) (int64, bool) {
	if dash {
		return 0, true
	}
	return parseInt(b)
}

// parseOptional parses a value where "-" means absent (-1).
func parseOptional(b []byte, dash bool) (int64, bool) {
	if dash {
		return -1, true
	}
	return parseInt(b)
}

// parseSeconds parses seconds with an optional fraction ("0.001", "12",
// "1.5") to nanosecond precision.
func parseSeconds(b []byte) (time.Duration, bool) {
	intPart, frac, _ := bytes.Cut(b, []byte{'.'})
	if len(intPart) == 0 || len(intPart) > 9 {
		return 0, false
	}
	sec, ok := parseInt(intPart)
	if !ok {
		return 0, false
	}
	d := time.Duration(sec) * time.Second
	scale := time.Duration(100_000_000)
	for i, c := range frac {
		if c < '0' || c > '9' {
			return 0, false
		}
		if i < 9 {
			d += time.Duration(c-'0') * scale
			scale /= 10
		}
	}
	if len(b) > len(intPart) && len(frac) == 0 {
		return 0, false // "1." is not a number
	}
	return d, true
}

// Open opens a log file for NewReader, transparently decompressing gzip
// (recognised by its magic bytes, not its name, since users rename files).
// Concatenated gzip members are read as one stream. Reading standard input
// ("-") is the caller's business.
func Open(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("access log %s: %w", path, err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, fmt.Errorf("access log %s: %w", path, err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("access log %s: %w", path, err)
		}
		return &openFile{Reader: zr, zr: zr, f: f}, nil
	}
	return &openFile{Reader: br, f: f}, nil
}

// openFile closes the gzip reader (if any) and the file together.
type openFile struct {
	io.Reader
	zr *gzip.Reader
	f  *os.File
}

// Close closes the decompressor and the file.
func (o *openFile) Close() error {
	var zerr error
	if o.zr != nil {
		zerr = o.zr.Close()
	}
	return errors.Join(zerr, o.f.Close())
}
