// Package yamlconf decodes edgegate's YAML configuration files strictly and
// reports every problem as "FILE:LINE: key: problem", so that a user can go
// straight to the line at fault.
//
// Decoding is two-step: the document is parsed into a node tree (kept for
// locating keys during validation) and then decoded into the caller's struct
// with unknown keys rejected.
//
// Values may refer to the environment, for use with docker compose and the
// like: ${NAME} is the value of the environment variable NAME (an error if
// it is not set), ${NAME:-default} is the default text (up to the closing
// brace) when NAME is unset or empty, and $$ is a single $; any other $ is
// kept as written. NAME is a letter or underscore followed by letters,
// digits and underscores. Expansion applies to scalar values only, never to
// mapping keys or comments, and is done on the text before decoding, so a
// plain (unquoted) ${PORT:-80} decodes into a number as if 80 had been
// written there, while a quoted one stays a string. An expanded value
// cannot change the structure of the file: it always stays one scalar, a
// value with a line break is an error, and errors keep the file's original
// line numbers. Block scalars (| and >) and values spanning several lines
// cannot hold references.
package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one configuration problem at a place in a file.
type Error struct {
	File    string // config file name as given by the user
	Line    int    // 1-based; 0 when the place is unknown
	Key     string // dotted key path, e.g. distributions[0].origins[1].domain_name
	Problem string // what is wrong, in words
}

// Error formats the problem as FILE:LINE: key: problem.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

// Errors is a list of configuration problems, reported together so that a
// user fixes a file in one pass.
type Errors []*Error

// Error joins the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns nil for an empty list, so callers can return it directly.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Document is a decoded file together with its node tree, used to point
// validation errors at the right line.
type Document struct {
	File string
	root *yaml.Node
}

// ReadFile reads and strictly decodes the YAML file at path into v.
func ReadFile(path string, v any) (*Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return Decode(path, data, v)
}

// Decode strictly decodes data (named file in errors) into v. Unknown keys,
// wrong types and values rejected by a field's UnmarshalYAML all come back
// as Errors with line and key.
//
// Environment references in values are expanded first (see the package
// documentation); the Document then describes the expanded text, which has
// the same lines as data.
func Decode(file string, data []byte, v any) (*Document, error) {
	doc := &Document{File: file}
	parsed, marked := markReferences(data)
	var root yaml.Node
	if err := yaml.Unmarshal(parsed, &root); err != nil {
		return nil, Errors{parseError(file, err)}
	}
	doc.root = &root
	if len(root.Content) == 0 {
		return nil, Errors{{File: file, Line: 1, Problem: "empty configuration"}}
	}
	if bytes.IndexByte(data, '$') >= 0 {
		expandedData, expanded, errs := expandDocument(file, parsed, &root, marked)
		if len(errs) > 0 {
			return nil, errs
		}
		if expandedData == nil && marked {
			expandedData = data // only keys or comments hold ${...}
		}
		if expandedData != nil {
			var root2 yaml.Node
			if err := yaml.Unmarshal(expandedData, &root2); err != nil {
				return nil, Errors{parseError(file, err)}
			}
			if bad := sameShape(&root, &root2, expanded, marked); bad != nil {
				return nil, Errors{{File: file, Line: bad.Line, Key: doc.keyAt(bad.Line, 0),
					Problem: "a value from the environment would change the structure of the file"}}
			}
			doc.root = &root2
			data = expandedData
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return nil, doc.decodeErrors(err)
	}
	return doc, nil
}

var (
	lineMsg     = regexp.MustCompile(`(?s)^line (\d+): (.*)$`) // a quoted value may span lines
	unknownKey  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	cannotUnmar = regexp.MustCompile("(?s)^cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
	yamlPrefix  = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)
)

func parseError(file string, err error) *Error {
	msg := marks.Replace(err.Error())
	if m := yamlPrefix.FindStringSubmatch(msg); m != nil {
		// The parser leaves the line out when its mark is still on the
		// first line (marks count from 0 and 0 reads as unknown), as for an
		// unterminated quote there: that is line 1.
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: max(line, 1), Problem: "invalid YAML: " + m[2]}
	}
	return &Error{File: file, Line: 1, Problem: "invalid YAML: " + msg}
}

func (d *Document) decodeErrors(err error) Errors {
	var vErr *ValueError
	if errors.As(err, &vErr) {
		return Errors{{File: d.File, Line: vErr.Line, Key: d.keyAt(vErr.Line, vErr.Column), Problem: vErr.Problem}}
	}
	var tErr *yaml.TypeError
	if !errors.As(err, &tErr) {
		return Errors{parseError(d.File, err)}
	}
	var out Errors
	for _, msg := range tErr.Errors {
		m := lineMsg.FindStringSubmatch(msg)
		if m == nil {
			out = append(out, &Error{File: d.File, Line: 1, Problem: msg})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		line = max(line, 1)
		e := &Error{File: d.File, Line: line, Problem: m[2]}
		if k := unknownKey.FindStringSubmatch(m[2]); k != nil {
			e.Key = d.keyNamed(line, k[1])
			e.Problem = "unknown key"
		} else if c := cannotUnmar.FindStringSubmatch(m[2]); c != nil {
			e.Key = d.keyAt(line, 0)
			e.Problem = fmt.Sprintf("%q is not a valid %s", c[2], friendlyType(c[3]))
		}
		out = append(out, e)
	}
	return out
}

func friendlyType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"), strings.HasPrefix(goType, "map"):
		return "list or mapping here"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "whole number"
	case goType == "bool":
		return "boolean (true or false)"
	case strings.HasPrefix(goType, "float"):
		return "number"
	default:
		return strings.TrimPrefix(goType, "*")
	}
}

// ValueError is returned by UnmarshalYAML methods in this package (and may be
// returned by callers' own ones) to report a bad scalar at its position.
type ValueError struct {
	Line, Column int
	Problem      string
}

func (e *ValueError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Problem) }

// NewValueError reports problem at node's position.
func NewValueError(node *yaml.Node, format string, args ...any) *ValueError {
	return &ValueError{Line: node.Line, Column: node.Column, Problem: fmt.Sprintf(format, args...)}
}

// walk visits every mapping key/value pair with its dotted path.
func walk(n *yaml.Node, path string, visit func(path string, key, value *yaml.Node) bool) bool {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if !walk(c, path, visit) {
				return false
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if !visit(p, k, v) || !walk(v, p, visit) {
				return false
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if !walk(c, fmt.Sprintf("%s[%d]", path, i), visit) {
				return false
			}
		}
	}
	return true
}

// keyNamed finds the path of the key called name on line.
func (d *Document) keyNamed(line int, name string) string {
	found := name
	walk(d.root, "", func(p string, k, _ *yaml.Node) bool {
		if k.Line == line && k.Value == name {
			found = p
			return false
		}
		return true
	})
	return found
}

// keyAt finds the path of the key whose value sits at line (and column, if
// non-zero), or whose key sits on that line.
func (d *Document) keyAt(line, column int) string {
	found := ""
	walk(d.root, "", func(p string, k, v *yaml.Node) bool {
		if v.Line == line && (column == 0 || v.Column == column) {
			found = p
			return false
		}
		if found == "" && k.Line == line {
			found = p
		}
		return true
	})
	if found == "" && column != 0 {
		// A value inside a flow or block sequence: report the sequence's key.
		walk(d.root, "", func(p string, k, v *yaml.Node) bool {
			if v.Kind == yaml.SequenceNode {
				for i, c := range v.Content {
					if c.Line == line && c.Column == column {
						found = fmt.Sprintf("%s[%d]", p, i)
						return false
					}
				}
			}
			return true
		})
	}
	return found
}

// Errorf builds a validation error for the key at path (dotted, with [i]
// indexes, as produced by this package), locating its line in the file.
// A path that is not in the file (a missing key) is reported at the line
// of its nearest existing parent.
func (d *Document) Errorf(path, format string, args ...any) *Error {
	return &Error{File: d.File, Line: d.Line(path), Key: path, Problem: fmt.Sprintf(format, args...)}
}

// Line returns the line of the key at path, or of its nearest parent that
// exists in the file; for a top-level key the file lacks, the line where
// the document starts (so that every error names a line); 0 only without
// a document.
func (d *Document) Line(path string) int {
	if d == nil || d.root == nil {
		return 0
	}
	for p := path; p != ""; p = parent(p) {
		line := 0
		walk(d.root, "", func(q string, k, _ *yaml.Node) bool {
			if q == p {
				line = k.Line
				return false
			}
			return true
		})
		if line == 0 {
			walk(d.root, "", func(q string, _, v *yaml.Node) bool {
				if v.Kind == yaml.SequenceNode && strings.HasPrefix(p, q+"[") {
					idx, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(p, q+"["), "]"))
					if err == nil && idx < len(v.Content) {
						line = v.Content[idx].Line
						return false
					}
				}
				return true
			})
		}
		if line != 0 {
			return line
		}
	}
	if len(d.root.Content) > 0 {
		return max(d.root.Content[0].Line, 1)
	}
	return 0
}

func parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}
