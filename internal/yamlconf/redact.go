package yamlconf

import (
	"fmt"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Redacted is v (a config) marshalled as YAML with its secrets replaced by
// "REDACTED": values of keys named token, secret or password, every value
// of custom_headers (an origin-verify header is a shared secret), and the
// password of any URL with one (redis://:pw@host). It serves the admin
// listeners' /debug/config: the effective config, defaults applied.
func Redacted(v any) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	redactNode(&n, false)
	return yaml.Marshal(&n)
}

const redactedValue = "REDACTED"

func redactNode(n *yaml.Node, secret bool) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			redactNode(c, secret)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := strings.ToLower(n.Content[i].Value)
			redactNode(n.Content[i+1], secret || k == "token" || k == "secret" || k == "password" || k == "custom_headers")
		}
	case yaml.ScalarNode:
		switch {
		case secret && n.Value != "":
			n.Value, n.Tag, n.Style = redactedValue, "!!str", 0
		case strings.Contains(n.Value, "://"):
			if u, err := url.Parse(n.Value); err == nil && u.User != nil {
				if _, has := u.User.Password(); has {
					u.User = url.UserPassword(u.User.Username(), redactedValue)
					n.Value = u.String()
				}
			}
		}
	}
}
