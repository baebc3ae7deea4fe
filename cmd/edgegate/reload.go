package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// runReload asks a running edge or origin tier to re-read its config, as
// SIGHUP does, through its admin listener: useful where the process is out
// of reach of signals (another container, another host).
func runReload(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "reload", "",
		"  edgegate reload                                   # the edge's admin listener on 127.0.0.1:9901\n"+
			"  edgegate reload -admin http://127.0.0.1:9902      # an origin tier\n"+
			"  EDGEGATE_ADMIN_TOKEN=... edgegate reload -admin http://10.0.0.5:9901\n")
	admin := fs.String("admin", "http://127.0.0.1:9901", "the admin listener's `URL`")
	token := fs.String("token", "", "admin bearer `TOKEN`; $EDGEGATE_ADMIN_TOKEN when not given")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(e, fs, "reload", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *token == "" {
		*token = os.Getenv("EDGEGATE_ADMIN_TOKEN")
	}
	url := strings.TrimSuffix(*admin, "/") + "/reload"
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("{}"))
	if err != nil {
		fmt.Fprintf(e.stderr, "edgegate reload: -admin %s: %v\n", *admin, err)
		return exitUsage
	}
	req.Header.Set("Content-Type", "application/json")
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(e.stderr, "edgegate reload: %v\n", err)
		return exitFailure
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	_ = json.Unmarshal(body, &answer)
	switch {
	case resp.StatusCode == http.StatusOK:
		fmt.Fprintln(e.stdout, "reloaded")
		return exitOK
	case answer.Error != "":
		// The config was refused: its FILE:LINE: key: problem lines.
		fmt.Fprintf(e.stderr, "edgegate reload: refused, the running config stays:\n%s\n", answer.Error)
		return exitUsage
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		fmt.Fprintf(e.stderr, "edgegate reload: %s: %s (pass -token or set EDGEGATE_ADMIN_TOKEN)\n", resp.Status, strings.TrimSpace(string(body)))
		return exitFailure
	}
	fmt.Fprintf(e.stderr, "edgegate reload: %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
	return exitFailure
}
