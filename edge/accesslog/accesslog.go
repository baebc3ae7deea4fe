// Package accesslog is edgegate's single definition of CloudFront-compatible
// standard (access) logs: the record, its line encoding, the rotating file
// Writer used by the edge, and the Reader used by `edgegate logs`.
//
// Writer and Reader live together so that what the edge writes and what the
// analyser reads can never drift apart: our files are byte-compatible with
// the files CloudFront delivers to S3 (W3C extended format, two header lines,
// tab-separated values, "-" for empty, RFC 1738 style %XX escapes), and the
// Reader also accepts real CloudFront files of every era, whose #Fields line
// has 23, 24, 26, 33 or more fields.
package accesslog

import (
	"strings"
	"time"
)

// Version is the W3C extended log format version written in the first
// header line, as CloudFront writes it.
const Version = "1.0"

// fieldsLine lists the 33 fields of a current CloudFront standard log, in
// CloudFront's order. It is a constant (not a slice) so that the package has
// no mutable state; FieldNames hands out copies.
const fieldsLine = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status " +
	"cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id " +
	"x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher " +
	"x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port " +
	"time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len " +
	"sc-range-start sc-range-end"

// header is the two lines at the top of every file.
const header = "#Version: " + Version + "\n#Fields: " + fieldsLine + "\n"

// NumFields is the number of fields AppendRecord writes on each line.
const NumFields = 33

// FieldNames returns the 33 field names in CloudFront order, as written in
// the #Fields header line. Each call returns a new slice that the caller may
// modify.
func FieldNames() []string {
	return strings.Fields(fieldsLine)
}

// Header returns the two header lines ("#Version: 1.0" and "#Fields: ...")
// that start every log file, each ending in "\n".
func Header() string {
	return header
}

// AppendHeader appends Header() to dst, for writers that build files in a
// byte buffer.
func AppendHeader(dst []byte) []byte {
	return append(dst, header...)
}

// Record is one request, one line of a standard log. Text fields hold the
// decoded value (what the viewer sent); AppendRecord encodes them and the
// Reader decodes them, so a Record survives a round trip through a file.
//
// The zero Record is not a blank line: ContentLength, RangeStart and RangeEnd
// use -1 for "absent". Call Reset to get a blank record.
type Record struct {
	Time          time.Time     // when the response finished; written as UTC date and time, whole seconds
	Location      string        // x-edge-location, e.g. NRT57
	BytesSent     int64         // sc-bytes: bytes sent to the viewer, headers included
	ClientIP      string        // c-ip, kept as text: readers must accept redacted values like xxx.xxx.xxx.xxx
	Method        string        // cs-method
	Host          string        // cs(Host): the distribution's own domain name, not the viewer's Host
	URIStem       string        // cs-uri-stem: the path as received, without "?" and query
	Status        int           // sc-status; 0 is written "000" (viewer left before a response)
	Referer       string        // cs(Referer)
	UserAgent     string        // cs(User-Agent)
	Query         string        // cs-uri-query, as received (still percent-encoded by the viewer)
	Cookie        string        // cs(Cookie), empty unless cookie logging is on
	ResultType    ResultType    // x-edge-result-type: result after the last byte left
	RequestID     string        // x-edge-request-id, also sent as a response header
	HostHeader    string        // x-host-header: the Host header the viewer sent
	Protocol      string        // cs-protocol: http, https, ws, wss
	BytesReceived int64         // cs-bytes: bytes received from the viewer, headers included
	TimeTaken     time.Duration // time-taken, written in seconds with 3 decimals
	ForwardedFor  string        // x-forwarded-for, may list several addresses
	SSLProtocol   string        // ssl-protocol, e.g. TLSv1.3; empty for http
	SSLCipher     string        // ssl-cipher, OpenSSL name; empty for http

	ResponseResultType ResultType    // x-edge-response-result-type: result just before the response was sent
	ProtocolVersion    string        // cs-protocol-version: HTTP/1.1, HTTP/2.0
	FLEStatus          string        // fle-status: field-level encryption status
	FLEEncryptedFields string        // fle-encrypted-fields
	ClientPort         int           // c-port: viewer source port
	TimeToFirstByte    time.Duration // time-to-first-byte, written in seconds with 3 decimals
	DetailedResultType ResultType    // x-edge-detailed-result-type: ResultType refined for errors
	ContentType        string        // sc-content-type
	ContentLength      int64         // sc-content-len; -1 = unknown, written "-"
	RangeStart         int64         // sc-range-start; -1 = absent, written "-"
	RangeEnd           int64         // sc-range-end; -1 = absent, written "-"
}

// Reset clears r to a blank record: empty strings, zero numbers, and -1 for
// ContentLength, RangeStart and RangeEnd, so that a reused record never
// carries a value from a previous request.
func (r *Record) Reset() {
	*r = Record{ContentLength: -1, RangeStart: -1, RangeEnd: -1}
}
