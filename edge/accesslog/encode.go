package accesslog

import (
	"strconv"
	"time"
)

// Bytes that CloudFront writes as %XX: 0-32, 127 and above, and
// < > " # % { } | \ ^ ~ [ ] ` '. The two constants are a bitmap of the
// ASCII half (bit c of escapeLo for c < 64, bit c-64 of escapeHi otherwise);
// TestEscapeSet checks them against that readable definition.
const (
	escapeLo uint64 = 0x500000adffffffff
	escapeHi uint64 = 0xf800000178000000
)

const hexDigits = "0123456789ABCDEF"

// mustEscape reports whether CloudFront writes c as %XX.
func mustEscape(c byte) bool {
	switch {
	case c < 64:
		return escapeLo>>c&1 != 0
	case c < 128:
		return escapeHi>>(c-64)&1 != 0
	}
	return true
}

// AppendRecord appends r to dst as one log line: the 33 fields in CloudFront
// order, separated by tabs, ending in "\n". Empty values are written "-";
// text is percent-encoded the way CloudFront does it (single encoding), so a
// value can never break the line apart. A text value that is exactly "-" is
// written "%2D" so that it reads back as "-" and not as empty.
//
// It does not allocate when dst has room for the line, so the edge can log
// every request from a reused buffer.
func AppendRecord(dst []byte, r *Record) []byte {
	t := r.Time.UTC()
	dst = appendDate(dst, t)
	dst = append(dst, '\t')
	dst = appendClock(dst, t)
	dst = append(dst, '\t')
	dst = appendText(dst, r.Location)
	dst = append(dst, '\t')
	dst = appendOptional(dst, r.BytesSent)
	dst = append(dst, '\t')
	dst = appendText(dst, r.ClientIP)
	dst = append(dst, '\t')
	dst = appendText(dst, r.Method)
	dst = append(dst, '\t')
	dst = appendText(dst, r.Host)
	dst = append(dst, '\t')
	dst = appendText(dst, r.URIStem)
	dst = append(dst, '\t')
	dst = appendStatus(dst, r.Status)
	dst = append(dst, '\t')
	dst = appendText(dst, r.Referer)
	dst = append(dst, '\t')
	dst = appendText(dst, r.UserAgent)
	dst = append(dst, '\t')
	dst = appendText(dst, r.Query)
	dst = append(dst, '\t')
	dst = appendText(dst, r.Cookie)
	dst = append(dst, '\t')
	dst = appendText(dst, string(r.ResultType))
	dst = append(dst, '\t')
	dst = appendText(dst, r.RequestID)
	dst = append(dst, '\t')
	dst = appendText(dst, r.HostHeader)
	dst = append(dst, '\t')
	dst = appendText(dst, r.Protocol)
	dst = append(dst, '\t')
	dst = appendOptional(dst, r.BytesReceived)
	dst = append(dst, '\t')
	dst = appendSeconds(dst, r.TimeTaken)
	dst = append(dst, '\t')
	dst = appendText(dst, r.ForwardedFor)
	dst = append(dst, '\t')
	dst = appendText(dst, r.SSLProtocol)
	dst = append(dst, '\t')
	dst = appendText(dst, r.SSLCipher)
	dst = append(dst, '\t')
	dst = appendText(dst, string(r.ResponseResultType))
	dst = append(dst, '\t')
	dst = appendText(dst, r.ProtocolVersion)
	dst = append(dst, '\t')
	dst = appendText(dst, r.FLEStatus)
	dst = append(dst, '\t')
	dst = appendText(dst, r.FLEEncryptedFields)
	dst = append(dst, '\t')
	dst = appendOptional(dst, int64(r.ClientPort))
	dst = append(dst, '\t')
	dst = appendSeconds(dst, r.TimeToFirstByte)
	dst = append(dst, '\t')
	dst = appendText(dst, string(r.DetailedResultType))
	dst = append(dst, '\t')
	dst = appendText(dst, r.ContentType)
	dst = append(dst, '\t')
	dst = appendOptional(dst, r.ContentLength)
	dst = append(dst, '\t')
	dst = appendOptional(dst, r.RangeStart)
	dst = append(dst, '\t')
	dst = appendOptional(dst, r.RangeEnd)
	return append(dst, '\n')
}

// escapes is mustEscape as a table, for appendText's inner loop: a load
// instead of two compares and a shift per byte of every logged field.
var escapes = func() (t [256]bool) {
	for c := range t {
		t[c] = mustEscape(byte(c))
	}
	return t
}()

// appendText writes s percent-encoded, copying runs of safe bytes at once.
func appendText(dst []byte, s string) []byte {
	switch s {
	case "":
		return append(dst, '-')
	case "-":
		return append(dst, "%2D"...)
	}
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !escapes[c] {
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// appendDate writes YYYY-MM-DD.
func appendDate(dst []byte, t time.Time) []byte {
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		dst = strconv.AppendInt(dst, int64(y), 10)
	} else {
		dst = append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	}
	return append(dst, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
}

// appendClock writes HH:MM:SS.
func appendClock(dst []byte, t time.Time) []byte {
	h, m, s := t.Clock()
	return append(dst, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+m/10), byte('0'+m%10), ':',
		byte('0'+s/10), byte('0'+s%10))
}

// appendStatus writes the status; 0 (no response sent) is "000" as at CloudFront.
func appendStatus(dst []byte, status int) []byte {
	if status <= 0 {
		return append(dst, "000"...)
	}
	return strconv.AppendInt(dst, int64(status), 10)
}

// appendOptional writes n, or "-" when n is negative (absent or unknown):
// the file stays readable even if a caller computes a negative count.
func appendOptional(dst []byte, n int64) []byte {
	if n < 0 {
		return append(dst, '-')
	}
	return strconv.AppendInt(dst, n, 10)
}

// appendSeconds writes d in seconds with exactly three decimals, rounded to
// the nearest millisecond ("0.001"); negative durations are written "0.000".
func appendSeconds(dst []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	ms := (d + time.Millisecond/2) / time.Millisecond
	dst = strconv.AppendInt(dst, int64(ms/1000), 10)
	f := int(ms % 1000)
	return append(dst, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}
