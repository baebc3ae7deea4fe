// Package accesslog is the single definition of the origin tier's access
// log: one line per request on HTTP and HTTPS listeners and one line per
// connection on TCP and TLS listeners, in a space-separated format modelled
// on the access log of an AWS Application Load Balancer. The Record, its
// encoding (AppendLine), its parser (ParseLine, Scanner) and the rotating
// file Writer live together so that what the load balancer writes and what
// `edgegate logs` reads cannot drift apart.
//
// # Format
//
// Each line holds these fields, in this order, separated by one space:
//
//	 1 type                      http | https | h2 | tcp | tls
//	 2 time                      UTC, 2006-01-02T15:04:05.000000Z: when the response ended (HTTP) or the connection closed (TCP/TLS)
//	 3 listener                  PROTOCOL:PORT of the listener, e.g. HTTPS:443
//	 4 client:port               the client's address
//	 5 target:port               the target used, - when none was reached
//	 6 request_processing_time   seconds: request received → sent to the target (TCP/TLS: accept → target connected, including the TLS handshake)
//	 7 target_processing_time    seconds: request sent → response headers received (TCP/TLS: how long the target connection was open)
//	 8 response_processing_time  seconds: response headers received → first byte to the client (TCP/TLS: -1)
//	 9 elb_status_code           status sent to the client, - on TCP/TLS
//	10 target_status_code        status the target answered, - when it did not
//	11 received_bytes            bytes from the client (HTTP: request headers, approximately, plus body)
//	12 sent_bytes                bytes to the client (HTTP: response headers, approximately, plus body)
//	13 "request"                 "METHOD scheme://host:port/path?query PROTO", "-" on TCP/TLS
//	14 "user_agent"              the User-Agent header
//	15 ssl_cipher                negotiated cipher suite (OpenSSL name, IANA for TLS 1.3, as ALB), - without TLS
//	16 ssl_protocol              TLSv1.2 | TLSv1.3, - without TLS
//	17 target_group              target group name
//	18 "domain_name"             SNI name the client sent
//	19 "actions_executed"        forward | redirect | -
//	20 "redirect_url"            Location of a redirect
//	21 "error_reason"            why the load balancer failed the request or connection (see the Reason constants)
//	22 "client_cert_subject"     subject of a verified client certificate (mutual TLS)
//
// Times are in seconds with microsecond precision; -1 marks a stage that was
// never reached (as ALB writes it). A field with no value is "-" (quoted or
// not). Quoted fields are always quoted; inside any field a backslash, a
// double quote, a space in an unquoted field, and every byte outside
// printable ASCII are written as \\, \", \x20 and \xHH, so that a line is
// always one line of ASCII and splits unambiguously. Parsers ignore fields
// after the last one they know, so fields may be added at the end.
package accesslog

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// NotReached is the duration written as -1: the stage was never reached.
const NotReached time.Duration = -1

// TimeLayout is the layout of the time field.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Line types (field 1).
const (
	TypeHTTP  = "http"
	TypeHTTPS = "https"
	TypeH2    = "h2"
	TypeTCP   = "tcp"
	TypeTLS   = "tls"
)

// Error reasons written in field 21. Names follow ALB's vocabulary where it
// has one.
const (
	ReasonTargetConnectionError      = "TargetConnectionError"      // no connection to any target
	ReasonTargetTLSNegotiationError  = "TargetTLSNegotiationError"  // TLS to a TLS/HTTPS target failed
	ReasonTargetResponseTimeout      = "TargetResponseTimeout"      // target silent past the response timeout
	ReasonTargetResponseError        = "TargetResponseError"        // target closed or broke the response
	ReasonClientClosed               = "ClientClosedConnection"     // client left before the response (status 460)
	ReasonClientTLSNegotiationError  = "ClientTLSNegotiationError"  // client TLS handshake failed
	ReasonClientCertificateMissing   = "ClientCertificateMissing"   // mutual TLS: no certificate
	ReasonClientCertificateUntrusted = "ClientCertificateUntrusted" // mutual TLS: not from the trust store's CAs
	ReasonClientCertificateExpired   = "ClientCertificateExpired"
	ReasonClientCertificateRevoked   = "ClientCertificateRevoked"
	ReasonClientCertificateInvalid   = "ClientCertificateInvalid" // other verification failures
	ReasonIdleTimeout                = "IdleTimeout"              // TCP/TLS connection idle past tcp_idle
	ReasonShutdown                   = "Shutdown"                 // closed when a graceful shutdown ran out of time
)

// fieldsLine names the fields in order; a constant so the package holds no
// mutable state.
const fieldsLine = "type time listener client:port target:port request_processing_time " +
	"target_processing_time response_processing_time elb_status_code target_status_code " +
	"received_bytes sent_bytes request user_agent ssl_cipher ssl_protocol target_group " +
	"domain_name actions_executed redirect_url error_reason client_cert_subject"

// NumFields is the number of fields AppendLine writes.
const NumFields = 22

// FieldNames returns the field names in order (a new slice on each call).
func FieldNames() []string { return strings.Fields(fieldsLine) }

// quoted reports which fields (0-based) are written in double quotes.
func quoted(i int) bool {
	switch i {
	case 12, 13, 17, 18, 19, 20, 21:
		return true
	}
	return false
}

// Record is one access log line; its fields are those of the format
// above, in the same order.
type Record struct {
	Type     string
	Time     time.Time
	Listener string
	Client   string // ip:port
	Target   string // ip:port, "" when none

	RequestProcessing  time.Duration // NotReached when not reached
	TargetProcessing   time.Duration
	ResponseProcessing time.Duration

	ELBStatus    int // 0 when none (TCP/TLS, or a failed handshake)
	TargetStatus int // 0 when the target did not answer

	ReceivedBytes int64
	SentBytes     int64

	Request           string // "METHOD URL PROTO"
	UserAgent         string
	SSLCipher         string
	SSLProtocol       string
	TargetGroup       string
	DomainName        string
	Actions           string
	RedirectURL       string
	ErrorReason       string
	ClientCertSubject string
}

// AppendLine appends r's line, ending in "\n", to dst.
func AppendLine(dst []byte, r *Record) []byte {
	fields := [NumFields]string{
		r.Type,
		r.Time.UTC().Format(TimeLayout),
		r.Listener,
		r.Client,
		r.Target,
		seconds(r.RequestProcessing),
		seconds(r.TargetProcessing),
		seconds(r.ResponseProcessing),
		status(r.ELBStatus),
		status(r.TargetStatus),
		strconv.FormatInt(r.ReceivedBytes, 10),
		strconv.FormatInt(r.SentBytes, 10),
		r.Request,
		r.UserAgent,
		r.SSLCipher,
		r.SSLProtocol,
		r.TargetGroup,
		r.DomainName,
		r.Actions,
		r.RedirectURL,
		r.ErrorReason,
		r.ClientCertSubject,
	}
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ' ')
		}
		q := quoted(i)
		if q {
			dst = append(dst, '"')
		}
		if f == "" {
			dst = append(dst, '-')
		} else {
			dst = appendEscaped(dst, f, !q)
		}
		if q {
			dst = append(dst, '"')
		}
	}
	return append(dst, '\n')
}

// String returns the line without its newline.
func (r *Record) String() string {
	b := AppendLine(nil, r)
	return string(b[:len(b)-1])
}

func seconds(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 6, 64)
}

func status(code int) string {
	if code <= 0 {
		return "-"
	}
	return strconv.Itoa(code)
}

const hexDigits = "0123456789abcdef"

func appendEscaped(dst []byte, s string, escapeSpace bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			dst = append(dst, '\\', '\\')
		case c == '"':
			dst = append(dst, '\\', '"')
		case c < 0x20 || c >= 0x7f || (c == ' ' && escapeSpace):
			dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// ErrSyntax is wrapped by every ParseLine error.
var ErrSyntax = errors.New("not an origin access log line")

// ParseLine parses one line (with or without its trailing newline). Lines
// with more fields than NumFields are accepted; the extra fields are
// ignored.
func ParseLine(line string) (Record, error) {
	line = strings.TrimRight(line, "\r\n")
	fields, err := split(line)
	if err != nil {
		return Record{}, err
	}
	if len(fields) < NumFields {
		return Record{}, fmt.Errorf("%w: %d fields, want %d", ErrSyntax, len(fields), NumFields)
	}
	var r Record
	var errs []error
	field := func(i int) string {
		if fields[i] == "-" {
			return ""
		}
		return fields[i]
	}
	r.Type = field(0)
	if r.Time, err = time.Parse(TimeLayout, fields[1]); err != nil {
		errs = append(errs, fmt.Errorf("time %q", fields[1]))
	}
	r.Listener, r.Client, r.Target = field(2), field(3), field(4)
	durs := []*time.Duration{&r.RequestProcessing, &r.TargetProcessing, &r.ResponseProcessing}
	for i, d := range durs {
		if *d, err = parseSeconds(fields[5+i]); err != nil {
			errs = append(errs, fmt.Errorf("%s %q", FieldNames()[5+i], fields[5+i]))
		}
	}
	for i, p := range []*int{&r.ELBStatus, &r.TargetStatus} {
		if v := field(8 + i); v != "" {
			if *p, err = strconv.Atoi(v); err != nil || *p < 0 {
				errs = append(errs, fmt.Errorf("%s %q", FieldNames()[8+i], v))
			}
		}
	}
	for i, p := range []*int64{&r.ReceivedBytes, &r.SentBytes} {
		if *p, err = strconv.ParseInt(fields[10+i], 10, 64); err != nil || *p < 0 {
			errs = append(errs, fmt.Errorf("%s %q", FieldNames()[10+i], fields[10+i]))
		}
	}
	r.Request, r.UserAgent, r.SSLCipher, r.SSLProtocol = field(12), field(13), field(14), field(15)
	r.TargetGroup, r.DomainName, r.Actions, r.RedirectURL = field(16), field(17), field(18), field(19)
	r.ErrorReason, r.ClientCertSubject = field(20), field(21)
	if len(errs) > 0 {
		return Record{}, fmt.Errorf("%w: bad %w", ErrSyntax, errors.Join(errs...))
	}
	return r, nil
}

func parseSeconds(s string) (time.Duration, error) {
	if s == "-1" {
		return NotReached, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	// Beyond what a Duration holds the conversion would wrap to a negative
	// value (found by fuzzing): refuse it like any other bad number.
	if err != nil || f < 0 || f >= float64(math.MaxInt64/int64(time.Microsecond))/1e6 {
		return 0, fmt.Errorf("bad seconds %q", s)
	}
	return time.Duration(f*1e6+0.5) * time.Microsecond, nil
}

// split cuts a line into unescaped fields. A quoted field keeps "-" as is
// so that the caller treats it as empty like an unquoted one.
func split(line string) ([]string, error) {
	var fields []string
	for i := 0; i <= len(line); {
		var b strings.Builder
		if i < len(line) && line[i] == '"' {
			i++
			closed := false
			for i < len(line) {
				c := line[i]
				if c == '"' {
					closed = true
					i++
					break
				}
				n, err := unescape(&b, line, i)
				if err != nil {
					return nil, err
				}
				i += n
			}
			if !closed {
				return nil, fmt.Errorf("%w: unterminated quoted field %d", ErrSyntax, len(fields)+1)
			}
			if i < len(line) && line[i] != ' ' {
				return nil, fmt.Errorf("%w: text after quoted field %d", ErrSyntax, len(fields)+1)
			}
		} else {
			for i < len(line) && line[i] != ' ' {
				n, err := unescape(&b, line, i)
				if err != nil {
					return nil, err
				}
				i += n
			}
		}
		fields = append(fields, b.String())
		i++ // the separating space
	}
	return fields, nil
}

// unescape writes the character or escape at line[i] to b and returns how
// many bytes it took.
func unescape(b *strings.Builder, line string, i int) (int, error) {
	c := line[i]
	if c != '\\' {
		b.WriteByte(c)
		return 1, nil
	}
	if i+1 < len(line) && (line[i+1] == '\\' || line[i+1] == '"') {
		b.WriteByte(line[i+1])
		return 2, nil
	}
	if i+3 < len(line) && line[i+1] == 'x' {
		v, err := strconv.ParseUint(line[i+2:i+4], 16, 8)
		if err == nil {
			b.WriteByte(byte(v))
			return 4, nil
		}
	}
	return 0, fmt.Errorf("%w: bad escape at byte %d", ErrSyntax, i)
}
