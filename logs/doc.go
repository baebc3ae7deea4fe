// Package logs is the analysis of CloudFront-format standard logs behind
// `edgegate logs summary` and `edgegate logs report`: the edge's own files
// and real CloudFront files of any era, plain or gzipped, read through
// edge/accesslog, the one definition of the format.
//
// # Reading
//
// Expand turns arguments into sources (files, directories walked in name
// order, "-" for standard input). Analyze reads them in parallel: each
// source is cut into blocks of whole lines that carry the #Fields line in
// force and their first line number, so that workers on every core parse
// them with their own accesslog.Reader, fold the records into their own
// aggregate, and report a malformed line with its true file and line. The
// aggregates merge at the end. Memory stays bounded whatever the input:
//
//   - top-N lists (hosts, URIs, clients, user agents, referers, edge
//     locations) use a Misra–Gries heavy-hitters summary that counts exactly
//     up to 2×8,192 distinct values (2×2,048 for hosts, user agents and
//     referers) and approximately beyond; the output then says so, with the
//     largest possible undercount (at most requests/(k+1));
//   - latency percentiles use log-linear histograms over whole milliseconds
//     (the precision of the files): exact up to 127 ms, within ±0.8% above
//     (±6.25% in the per-bucket timeline and per error type);
//   - the timeline starts at one-minute buckets and coarsens (5 min, 15 min,
//     1 h, ...) when it would exceed 1,440 buckets; the summary shows at
//     most 360 of them;
//   - per-host series (for findings) cover the first 64 hosts, error groups
//     the first 256 (type, host) pairs; the rest fold into "(other)".
//
// # Summary
//
// Summarize turns the analysis into a Summary: the time range, requests and
// bytes, requests per minute (per minute of the timeline's buckets, a
// partial first or last minute counted whole, so that no rate is
// extrapolated and the mean never exceeds the peak), the cache hit ratio by
// requests and by bytes
// (cacheable requests: Hit and RefreshHit against Miss), counts of the three
// result-type fields, status classes and codes, latency percentiles overall
// and per result type, top lists, protocols, TLS versions and ciphers,
// errors by detailed type with their hosts, top URIs and first and last
// time, and Findings: explanations in plain words with counts and a time
// window (bursts of origin errors per host, what the origin latency did
// before OriginReadErrors, hit ratio drops, a client hammering one URI, 4xx
// spikes). The host of a request is the Host header the viewer sent
// (x-host-header), else cs(Host).
//
// WriteSummary prints it as an aligned table, CSV (section,key,metric,value
// rows) or JSON. The JSON document is the Summary type; its field comments
// are the reference for every key, keys are only added within a
// SchemaVersion, lists are sorted by count then key, times are RFC 3339
// UTC, durations are seconds.
//
// WriteReport renders the same Summary as one self-contained HTML page with
// hand-drawn inline SVG charts and no script or network access. Every time
// chart draws a bucket across the time it covers, so that a finding's
// window, widened to whole buckets, has its data under it.
package logs
