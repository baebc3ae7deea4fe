package yamlconf

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Stand-ins for the braces of a "${" ... "}" reference while the document is
// parsed: in a flow collection ([a, ${X}] or {k: ${X}}) a brace would
// otherwise end the plain scalar. Each is one rune, like the brace it
// replaces, so lines and columns do not move. They are private-use
// characters, which YAML accepts in plain scalars and strconv.Quote always
// escapes.
const (
	openMark  = '\uE000'
	closeMark = '\uE001'
)

var (
	envName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	safePlain = regexp.MustCompile(`^[A-Za-z0-9_./+-][A-Za-z0-9_./:@+=%-]*$`)
	marks     = strings.NewReplacer(string(openMark), "{", string(closeMark), "}")
)

// markReferences returns data with the braces of every "${...}" that closes
// on its own line replaced by openMark and closeMark, or data unchanged (and
// false) if there is none or data already holds a mark rune.
func markReferences(data []byte) ([]byte, bool) {
	s := string(data)
	if !strings.Contains(s, "${") || strings.ContainsRune(s, openMark) || strings.ContainsRune(s, closeMark) {
		return data, false
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	changed := false
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		rest := s[i+2:]
		end := strings.IndexAny(rest, "}\n")
		if end < 0 || rest[end] != '}' {
			b.WriteString(s[:i+2])
			s = rest
			continue
		}
		b.WriteString(s[:i+1])
		b.WriteRune(openMark)
		b.WriteString(rest[:end])
		b.WriteRune(closeMark)
		s = rest[end+1:]
		changed = true
	}
	b.WriteString(s)
	return []byte(b.String()), changed
}

// expandEnv expands ${NAME}, ${NAME:-default} and $$ in s from the
// environment. The error is the problem in words.
func expandEnv(s string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) || (s[i+1] != '$' && s[i+1] != '{') {
			b.WriteByte(s[i])
			i++
			continue
		}
		if s[i+1] == '$' {
			b.WriteByte('$')
			i += 2
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("%s: unclosed variable reference", s[i:])
		}
		ref := s[i : i+2+end+1]
		name, def, hasDef := strings.Cut(ref[2:len(ref)-1], ":-")
		if !envName.MatchString(name) {
			return "", fmt.Errorf("%s: invalid variable reference, want ${NAME} or ${NAME:-default}", ref)
		}
		val, ok := os.LookupEnv(name)
		switch {
		case hasDef && val == "":
			val = def
		case !ok:
			return "", fmt.Errorf("${%s} is not set", name)
		}
		if strings.ContainsAny(val, "\r\n") {
			return "", fmt.Errorf("%s: the value contains a line break", ref)
		}
		if !utf8.ValidString(val) {
			return "", fmt.Errorf("%s: the value is not valid UTF-8", ref)
		}
		b.WriteString(val)
		i += len(ref)
	}
	return b.String(), nil
}

// patch is one scalar value to rewrite in the source text.
type patch struct {
	node       *yaml.Node
	start, end int // byte offsets within the node's line
	text       string
	value      string // the expanded value, as the re-parsed node must hold it
}

// expandDocument expands environment references in the scalar values of
// root, parsed from data (with markReferences applied if marked). It returns
// the text to decode, line for line the same as data with the marks undone,
// and the expanded value of each rewritten node; nil text when no value
// changes.
func expandDocument(file string, data []byte, root *yaml.Node, marked bool) ([]byte, map[*yaml.Node]string, Errors) {
	var errs Errors
	lines := strings.Split(string(data), "\n")
	byLine := map[int][]patch{}
	expanded := map[*yaml.Node]string{}
	fail := func(n *yaml.Node, path, format string, args ...any) {
		errs = append(errs, &Error{File: file, Line: n.Line, Key: path, Problem: fmt.Sprintf(format, args...)})
	}
	walkValues(root, "", func(path string, n *yaml.Node) {
		value := n.Value
		if marked {
			value = marks.Replace(value)
		}
		hasMark := value != n.Value
		if !strings.Contains(value, "$") {
			return
		}
		out, err := expandEnv(value)
		if err != nil {
			fail(n, path, "%v", err)
			return
		}
		if out == value && !hasMark {
			return
		}
		if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			fail(n, path, "${...} in a block scalar (| or >) is not supported")
			return
		}
		if n.Line < 1 || n.Line > len(lines) {
			fail(n, path, "cannot locate the value to expand ${...}")
			return
		}
		line := lines[n.Line-1]
		start, end, ok := scalarExtent(line, n)
		if !ok {
			fail(n, path, "${...} in a value spanning several lines is not supported")
			return
		}
		text := out
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 || !safePlain.MatchString(out) || strings.HasSuffix(out, ":") || out == "-" {
			text = strconv.Quote(out)
		}
		byLine[n.Line] = append(byLine[n.Line], patch{node: n, start: start, end: end, text: text, value: out})
		expanded[n] = out
	})
	if len(errs) > 0 {
		return nil, nil, errs
	}
	if len(byLine) == 0 {
		return nil, nil, nil
	}
	for ln, ps := range byLine {
		sort.Slice(ps, func(i, j int) bool { return ps[i].start > ps[j].start })
		line := lines[ln-1]
		for i, p := range ps {
			if i > 0 && p.end > ps[i-1].start {
				fail(p.node, "", "cannot expand overlapping values")
				continue
			}
			line = line[:p.start] + p.text + line[p.end:]
		}
		lines[ln-1] = line
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	out := strings.Join(lines, "\n")
	if marked {
		out = marks.Replace(out)
	}
	return []byte(out), expanded, nil
}

// walkValues calls visit for every scalar that is a mapping value or a
// sequence item (never a mapping key), with its dotted path.
func walkValues(n *yaml.Node, path string, visit func(path string, n *yaml.Node)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkValues(c, path, visit)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			walkValue(n.Content[i+1], p, visit)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walkValue(c, fmt.Sprintf("%s[%d]", path, i), visit)
		}
	}
}

func walkValue(n *yaml.Node, path string, visit func(path string, n *yaml.Node)) {
	if n.Kind == yaml.ScalarNode {
		visit(path, n)
		return
	}
	walkValues(n, path, visit)
}

// scalarExtent finds the byte range of scalar n's source text (quotes
// included) on its line; ok is false if it does not end on that line.
func scalarExtent(line string, n *yaml.Node) (start, end int, ok bool) {
	start = -1
	col := 1
	for i := range line {
		if col == n.Column {
			start = i
			break
		}
		col++
	}
	if start < 0 {
		return 0, 0, false
	}
	// An anchor or tag before the scalar: the node starts at it.
	for start < len(line) && (line[start] == '&' || line[start] == '!') && (n.Anchor != "" || n.Style&yaml.TaggedStyle != 0) {
		for start < len(line) && line[start] != ' ' && line[start] != '\t' {
			start++
		}
		for start < len(line) && (line[start] == ' ' || line[start] == '\t') {
			start++
		}
	}
	rest := line[start:]
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if !strings.HasPrefix(rest, `"`) {
			return 0, 0, false
		}
		for i := 1; i < len(rest); i++ {
			switch rest[i] {
			case '\\':
				i++
			case '"':
				return start, start + i + 1, true
			}
		}
		return 0, 0, false
	case n.Style&yaml.SingleQuotedStyle != 0:
		if !strings.HasPrefix(rest, `'`) {
			return 0, 0, false
		}
		for i := 1; i < len(rest); i++ {
			if rest[i] == '\'' {
				if i+1 < len(rest) && rest[i+1] == '\'' {
					i++
					continue
				}
				return start, start + i + 1, true
			}
		}
		return 0, 0, false
	default:
		if !strings.HasPrefix(rest, n.Value) {
			return 0, 0, false
		}
		return start, start + len(n.Value), true
	}
}

// sameShape reports the first node of want (parsed before expansion) that
// got differs from, apart from the expanded values, or nil.
func sameShape(want, got *yaml.Node, expanded map[*yaml.Node]string, marked bool) *yaml.Node {
	if want.Kind != got.Kind || len(want.Content) != len(got.Content) || want.Line != got.Line {
		return want
	}
	if want.Kind == yaml.ScalarNode || want.Kind == yaml.AliasNode {
		v, ok := expanded[want]
		if !ok {
			v = want.Value
			if marked {
				v = marks.Replace(v)
			}
		}
		if got.Value != v {
			return want
		}
		return nil
	}
	for i := range want.Content {
		if bad := sameShape(want.Content[i], got.Content[i], expanded, marked); bad != nil {
			return bad
		}
	}
	return nil
}
