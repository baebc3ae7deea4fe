package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sort"

	"github.com/edgegate/edgegate/edge"
	"github.com/edgegate/edgegate/edge/originconn"
	"go.yaml.in/yaml/v3"
)

// configKind tells an edge config from an origin-tier one by its top-level
// keys.
func configKind(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(data, &top); err != nil || top == nil {
		// Let the real decoder report the problem with its line.
		return "edge", nil
	}
	if _, ok := top["origin"]; ok {
		return "origin", nil
	}
	return "edge", nil
}

func runCheck(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "check", "",
		"  edgegate check -config configs/edge.yaml\n  edgegate check -config configs/edge.yaml -probe   # also connect to every origin\n  edgegate check -files=false -config edge.yaml      # a config for another host: do not look for its files\n")
	config := fs.String("config", "", "config `FILE` to validate (edge or origin tier)")
	fs.require("config")
	probe := fs.Bool("probe", false, "also connect to every origin the way the edge would")
	files := fs.Bool("files", true, "also check that the certificate, key, CA and CRL files the config names are readable; -files=false checks a config written for another host")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	kind, err := configKind(*config)
	if err != nil {
		fmt.Fprintf(e.stderr, "edgegate check: %v\n", err)
		return exitUsage
	}
	if kind == "origin" {
		return checkOrigin(ctx, e, *config, *files)
	}
	cfg, err := edge.LoadConfig(*config)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	if err := cfg.CheckFiles(); *files && err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	// The CA's profiles are checked only for a config of this host: its
	// trusted_roots file is one of the files -files=false skips.
	if *files {
		if err := cfg.CheckCA(ctx); err != nil {
			fmt.Fprintln(e.stderr, err)
			return exitUsage
		}
	}
	origins := 0
	for _, d := range cfg.Distributions {
		origins += len(d.Origins)
	}
	fmt.Fprintf(e.stdout, "%s: ok (edge config: %d distributions, %d origins)\n", *config, len(cfg.Distributions), origins)
	if !*probe {
		return exitOK
	}
	all, err := cfg.OriginOptions()
	if err != nil {
		fmt.Fprintf(e.stderr, "edgegate check: %v\n", err)
		return exitFailure
	}
	failed := 0
	dists := make([]string, 0, len(all))
	for d := range all {
		dists = append(dists, d)
	}
	sort.Strings(dists)
	for _, d := range dists {
		ids := make([]string, 0, len(all[d]))
		for id := range all[d] {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			o := all[d][id]
			u := &url.URL{Scheme: "https", Host: o.DomainName, Path: "/"}
			rep := originconn.Probe(ctx, o, u)
			status := "ok"
			if !rep.OK {
				status = "FAILED"
				failed++
			}
			fmt.Fprintf(e.stdout, "\ndistribution %s, origin %s: %s\n%s\n", d, id, status, rep.String())
		}
	}
	if failed > 0 {
		fmt.Fprintf(e.stdout, "\n%d origin(s) failed the probe\n", failed)
		return exitFailure
	}
	return exitOK
}
