package main

// A mutation is a deliberate bug: edits applied to the module, and the
// tests (package and -run pattern) that claim the behaviour it breaks. Each
// must make one of those tests fail within the per-mutation timeout.
type mutation struct {
	name  string
	what  string // the behaviour the tests must guard
	pkg   string
	run   string
	edits []edit
}

// edit replaces the one occurrence of old in file (relative to the module
// root) with new.
type edit struct{ file, old, new string }

// mutations is the list `make mutants` runs. Issue 20's table comes first;
// later issues add theirs below it and name them in their note.
var mutations = []mutation{
	{
		name: "edge-run-no-drain",
		what: "in-flight requests accepted before SIGTERM complete",
		pkg:  "./cmd/edgegate", run: "^TestSIGTERM",
		edits: []edit{{"edge/server.go",
			"context.WithTimeout(context.WithoutCancel(ctx), s.state().cfg.Edge.Timeouts.Shutdown.D())",
			"context.WithTimeout(context.WithoutCancel(ctx), 0)"}},
	},
	{
		name: "edge-run-no-drain-in-process",
		what: "Run ending on its context drains a request in flight",
		pkg:  "./edge", run: "^TestRunDrainsOnCancel$",
		edits: []edit{{"edge/server.go",
			"context.WithTimeout(context.WithoutCancel(ctx), s.state().cfg.Edge.Timeouts.Shutdown.D())",
			"context.WithTimeout(context.WithoutCancel(ctx), 0)"}},
	},
	{
		name: "acme-any-name-to-certmagic",
		what: "an unconfigured name reaches no certmagic obtain",
		pkg:  "./acme", run: "^(TestManagerServesOnlyConfiguredNames|TestIssueOverEachChallenge)$",
		edits: []edit{{"acme/manager.go", "if known && m.magic != nil && (m.acmeNames[name] || m.acmeNames[wildcardOf(name)]) {",
			"if m.magic != nil && (m.acmeNames[name] || m.acmeNames[wildcardOf(name)] || m.magic.ObtainCertAsync(hello.Context(), name) == nil) {"}},
	},
	{
		name: "invalidation-no-publish",
		what: "an invalidation reaches other edges by Pub/Sub, not the poll backstop",
		pkg:  "./cache", run: "^(TestDoTwoEdges|TestInvalidatorCluster)$",
		edits: []edit{{"cache/invalidate.go", "\t\tpipe.Publish(ctx, v.key(\"events\"), data)\n", ""}},
	},
	{
		name: "fetch-bypasses-group",
		what: "concurrent misses of one key make one origin request",
		pkg:  "./cache", run: "^TestDoCollapsedForwarding$",
		edits: []edit{{"cache/cache.go",
			"res, _, err := c.group.Do(ctx, skey, func(fctx context.Context) (*fetchResult, error) {",
			"res, _, err := c.group.Do(ctx, skey+fmt.Sprintf(\"%p\", r), func(fctx context.Context) (*fetchResult, error) {"}},
	},
	{
		name: "fetch-no-recheck",
		what: "a viewer paused between its lookup and the fetch does not fetch again",
		pkg:  "./cache", run: "^TestDoPausedViewerNoSecondFetch$",
		edits: []edit{{"cache/cache.go", "now != nil && now.Freshness(c.o.Now()) == Fresh {", "false && now != nil && now.Freshness(c.o.Now()) == Fresh {"}},
	},
	{
		name: "memory-drops-short-ttl",
		what: "the memory tier keeps an entry for its TTL, however short",
		pkg:  "./cache", run: "^TestMemory",
		edits: []edit{{"cache/memory.go", "\tif ttl <= 0 {\n\t\treturn nil\n\t}", "\tif ttl <= time.Second {\n\t\treturn nil\n\t}"}},
	},
	// Added by issue 20 for the checks its list named.
	{
		name: "codec-drops-body",
		what: "an entry's body survives encoding",
		pkg:  "./cache", run: "^TestCodecRoundTrip$",
		edits: []edit{{"cache/codec.go", "return appendBytes(b, e.Body), nil", "return appendBytes(b, nil), nil"}},
	},
	{
		name: "group-fetch-not-detached",
		what: "a viewer hanging up does not fail a fetch others wait for",
		pkg:  "./cache", run: "^TestGroup",
		edits: []edit{{"cache/group.go", "detached := context.WithoutCancel(ctx)", "detached := ctx"}},
	},
	{
		name: "rekey-drops-merged-bucket",
		what: "coarsening a month of logs keeps every request in the timeline",
		pkg:  "./logs", run: "^TestTimelineOverAMonth$",
		edits: []edit{{"logs/series.go", "out[n] = merge(cur, v)", "out[n] = cur"}},
	},
	{
		name: "report-drops-error-types",
		what: "every error type in the logs is reported",
		pkg:  "./logs", run: "^TestRoundTripWithEdgeWriter$",
		edits: []edit{{"logs/summary.go", "\ts.Errors = errorTypes(a, n)\n", "\ts.Errors = errorTypes(a, n)[:0]\n"}},
	},
	{
		name: "upload-bytes-not-counted",
		what: "cs-bytes counts a request body sent through the edge",
		pkg:  "./edge", run: "^TestUploadThroughEdge$",
		edits: []edit{{"edge/exchange.go", "\tc.n += int64(n)\n", ""}},
	},
	{
		name: "cut-upload-not-classified",
		what: "a viewer that stops mid-upload is logged as ClientCommError",
		pkg:  "./edge", run: "^TestUploadThroughEdge$",
		edits: []edit{{"edge/proxy.go", "\tif ex.bodyBroken() {\n", "\tif false && ex.bodyBroken() {\n"}},
	},
	{
		name: "stream-no-tls-to-targets",
		what: "a TLS target group is spoken to in TLS",
		pkg:  "./origin", run: "^TestStreamToTLSTargets$",
		edits: []edit{{"origin/targetgroup.go", "\tif g.protocol != ProtocolTLS {\n\t\treturn c, \"\", nil", "\tif true {\n\t\treturn c, \"\", nil"}},
	},
	{
		name: "stream-no-retry",
		what: "a stream skips a target whose TLS handshake fails and tries the next",
		pkg:  "./origin", run: "^TestStreamToTLSTargets$",
		edits: []edit{{"origin/targetgroup.go", "for range len(g.view().targets) {", "for range 1 {"}},
	},
	{
		name: "stream-failure-names-no-target",
		what: "a stream every target refused is logged with the last target tried",
		pkg:  "./origin", run: "^TestStreamToTLSTargets$",
		edits: []edit{{"origin/targetgroup.go", "\treturn ts[len(ts)-1]\n", "\treturn nil\n"}},
	},
	// Added by issue 14 (speed and memory) and its follow-ups.
	{
		name: "memory-weighs-blocks-only",
		what: "the memory tier weighs what an entry costs on the heap, not only its bytes",
		pkg:  "./cache", run: "^TestMemoryWeighsHeap$",
		edits: []edit{{"cache/memory.go", "w := it.size() + int64(sizeClass(len(key))) + memEntryOverhead", "w := it.size() + int64(len(key))"}},
	},
	{
		name: "unstorable-key-collapses",
		what: "viewers of a key whose responses cannot be stored do not queue behind one fetch",
		pkg:  "./cache", run: "^TestDoUnstorableKeyNotCollapsed$",
		edits: []edit{{"cache/cache.go", "if e == nil && c.passes.marked(skey, c.o.Now()) {", "if false && e == nil && c.passes.marked(skey, c.o.Now()) {"}},
	},
	{
		name: "h2-headers-not-held",
		what: "an HTTP/2 response's header block leaves in one write with its body",
		pkg:  "./edge", run: "^TestViewerConnSendsHeadersWithTheirBody$",
		edits: []edit{{"edge/conn.go", "if holdHeaders(p) && len(c.held)+len(p) <= maxHeld {", "if false && holdHeaders(p) && len(c.held)+len(p) <= maxHeld {"}},
	},
	{
		name: "cert-storage-close-no-wait",
		what: "closing the certificate storage waits for certmagic's jobs to release their locks",
		pkg:  "./acme", run: "^TestGatedStorage",
		edits: []edit{{"acme/storagegate.go", "for (g.busy > 0 || len(g.held) > 0) && !expired {", "for false && (g.busy > 0 || len(g.held) > 0) && !expired {"}},
	},
}
