package logs

// reportTemplate is the page of WriteReport. It is a constant rather than an
// embedded file so that the package keeps no variables; html/template
// escapes every value taken from the logs.
const reportTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="edgegate logs report">
<title>{{.Title}}</title>
<style>
:root{--bg:#f4f5f7;--card:#fff;--ink:#101828;--ink2:#344054;--muted:#667085;--line:#e4e7ec;--accent:#2e90fa}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:linear-gradient(120deg,#0b1324,#1d2b4a);color:#fff;padding:28px 0 30px}
.wrap{max-width:1240px;margin:0 auto;padding:0 32px}
header h1{margin:0;font-size:26px;font-weight:650;letter-spacing:-.01em}
header p{margin:6px 0 0;color:#b9c3d6;font-size:14px;overflow-wrap:anywhere}
main{padding:22px 0 48px}
.kpis{display:grid;grid-template-columns:repeat(6,minmax(0,1fr));gap:12px;margin-top:-44px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 16px;box-shadow:0 1px 2px rgba(16,24,40,.05)}
.kpi .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.kpi .v{font-size:26px;font-weight:650;margin-top:2px;font-variant-numeric:tabular-nums;white-space:nowrap}
.kpi .s{color:var(--muted);font-size:12px}
.kpi.bad .v{color:#d92d20}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:18px 22px;margin-top:18px;box-shadow:0 1px 2px rgba(16,24,40,.05)}
h2{font-size:17px;margin:0 0 4px;font-weight:650}
.cap{color:var(--muted);font-size:12.5px;margin:0 0 10px}
.finding{display:grid;grid-template-columns:34px 1fr;gap:12px;border-left:4px solid;border-radius:8px;padding:12px 16px;margin:10px 0}
.finding .num{width:28px;height:28px;border-radius:50%;color:#fff;font-weight:700;display:flex;align-items:center;justify-content:center}
.finding .host{font-size:12px;color:var(--ink2);font-weight:600}
.finding code,.foot code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:rgba(16,24,40,.06);padding:1px 5px;border-radius:4px}
.finding .tag{font-size:11px;font-weight:700;text-transform:uppercase;letter-spacing:.05em;margin-right:8px}
.critical{border-color:#d92d20;background:#fef3f2}.critical .num{background:#d92d20}.critical .tag{color:#b42318}
.warning{border-color:#f79009;background:#fffaeb}.warning .num{background:#f79009}.warning .tag{color:#b54708}
.info{border-color:#2e90fa;background:#eff8ff}.info .num{background:#2e90fa}.info .tag{color:#175cd3}
.ok{color:#067647;background:#ecfdf3;border-radius:8px;padding:12px 16px}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin:0 0 6px;font-size:12.5px;color:var(--ink2)}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:6px;vertical-align:-1px}
.legend i.dash{height:0;border-top:3px dashed;border-radius:0;vertical-align:3px;background:none!important}
svg{display:block;width:100%;height:auto}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#667085}
svg .grid{stroke:#eef0f3}svg .axis,svg .tick{stroke:#98a2b3}
svg .ylab{text-anchor:end}
svg .band{font-weight:700;fill:#344054}
svg .hover{fill:transparent}svg .hover:hover{fill:rgba(16,24,40,.07)}
svg .hlab{text-anchor:end;fill:#344054;font-size:12px}svg .hval{font-size:11.5px}
svg .mixlab{fill:#fff;font-weight:600;font-size:11.5px}
svg.hbars,svg.mix{max-width:560px}
.cols2{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:18px}
.cols2 .card{margin-top:0}
.row{margin-top:18px}
.mixes h3,h3.sub{font-size:13px;margin:12px 0 6px;color:var(--ink2);font-weight:600}
span.c{color:var(--muted);font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;font-size:12px}
table{width:100%;border-collapse:collapse;font-size:13px}
th{font-size:11.5px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600;text-align:left;border-bottom:1px solid var(--line);padding:6px 8px}
td{padding:6px 8px;border-bottom:1px solid #f2f4f7;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.k{overflow-wrap:anywhere;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
td.bar{width:28%}
.bar span{display:block;height:8px;border-radius:4px;background:var(--accent);opacity:.8;margin-top:6px}
.note{color:#b54708;font-size:12px;margin:-2px 0 8px}
.foot{color:var(--muted);font-size:12.5px}
.foot li{margin:3px 0}
.empty{color:var(--muted)}
@media (max-width:900px){.kpis{grid-template-columns:repeat(2,1fr)}.cols2{grid-template-columns:1fr}}
</style>
</head>
<body>
<header><div class="wrap">
<h1>{{.Title}}</h1>
<p>{{.Subtitle}}</p>
</div></header>
<main><div class="wrap">

<div class="kpis">
{{- range .KPIs}}
<div class="kpi {{.Tone}}"><div class="l">{{.Label}}</div><div class="v">{{.Value}}</div><div class="s">{{.Sub}}</div></div>
{{- end}}
</div>

<section class="card">
<h2>Findings</h2>
<p class="cap">What stands out, in plain words, each with its counts and time window.</p>
{{- if .Findings}}
{{- range .Findings}}
<div class="finding {{.Severity}}"><div class="num">{{.Number}}</div><div>
<div><span class="tag">{{.Severity}} · {{.Kind}}</span>{{if .Host}}<span class="host">{{.Host}}</span>{{end}}</div>
<div>{{.Message}}</div>
</div></div>
{{- end}}
{{- else}}
<div class="ok">Nothing stands out: no origin error bursts, hit ratio drops, hammering clients or 4xx spikes.</div>
{{- end}}
</section>

{{- range .Charts}}
<section class="card">
<h2>{{.Title}}</h2>
<p class="cap">{{.Caption}}</p>
<div class="legend">{{range .Legend}}<span><i class="{{if .Dash}}dash{{end}}" style="background:{{.Color}};border-color:{{.Color}}"></i>{{.Name}}</span>{{end}}</div>
{{.SVG}}
</section>
{{- end}}

<div class="cols2 row">
<section class="card">
<h2>Status mix</h2>
<p class="cap">Status classes, then the most frequent codes ("000": the viewer left before a response)</p>
{{.StatusMix}}
<div style="height:12px"></div>
{{.StatusCodes}}
</section>
<section class="card">
<h2>Result types</h2>
<h3 class="sub">x-edge-result-type</h3>
{{.ResultTypes}}
<h3 class="sub">x-edge-detailed-result-type</h3>
{{.Detailed}}
</section>
</div>

<section class="card">
<h2>Latency</h2>
<p class="cap">Percentiles of time-taken (request received to last byte) and time-to-first-byte, overall and by result type</p>
<table>
<tr><th>result type</th><th class="n">requests</th><th class="n">time taken p50</th><th class="n">p90</th><th class="n">p99</th><th class="n">max</th><th class="n">first byte p50</th><th class="n">p90</th><th class="n">p99</th><th class="n">max</th></tr>
<tr><td><b>all</b></td>{{template "lat" .S.Latency.Overall}}</tr>
{{- range .S.Latency.ByResultType}}
<tr><td>{{.ResultType}}</td>{{template "lat" .LatencyPair}}</tr>
{{- end}}
</table>
</section>

{{- if .S.Errors}}
<section class="card">
<h2>Failed requests by detailed type</h2>
<p class="cap">With the hosts and URIs they concern and when they happened</p>
<table>
<tr><th>type</th><th class="n">requests</th><th>first / last (UTC)</th><th>status</th><th style="width:24%">hosts</th><th style="width:30%">top URIs</th></tr>
{{- range .S.Errors}}
<tr><td><b>{{.Type}}</b></td><td class="n">{{num .Count}}</td><td class="n">{{when .First}}<br>{{when .Last}}</td>
<td>{{range $i, $c := .Statuses}}{{if lt $i 3}}{{if $i}}, {{end}}{{$c.Key}}{{end}}{{end}}</td>
<td class="k">{{range $i, $c := .Hosts}}{{if lt $i 3}}<div>{{clip $c.Key 40}} <span class="c">{{num $c.Count}}</span></div>{{end}}{{end}}</td>
<td class="k">{{range $i, $c := .TopURIs}}{{if lt $i 3}}<div>{{clip $c.Key 56}} <span class="c">{{num $c.Count}}</span></div>{{end}}{{end}}</td></tr>
{{- end}}
</table>
</section>
{{- end}}

<div class="cols2 row">
{{- range .Tops}}
<section class="card">
<h2>Top {{.Title}}</h2>
{{- if .Note}}<p class="note">{{.Note}}</p>{{end}}
<table>
{{- range .Rows}}
<tr><td class="k" title="{{.Full}}">{{.Key}}</td><td class="n">{{.Count}}</td><td class="n">{{.Share}}</td><td class="bar"><span style="width:{{.Width}}%"></span></td></tr>
{{- else}}
<tr><td class="empty">none</td></tr>
{{- end}}
</table>
</section>
{{- end}}
</div>

<div class="cols2 row">
<section class="card mixes">
<h2>Protocols</h2>
{{- range .Mixes}}
<h3>{{.Title}}</h3>
{{.SVG}}
{{- end}}
</section>
<section class="card">
<h2>TLS ciphers</h2>
<p class="cap">ssl-cipher ("-": plain HTTP)</p>
{{.Ciphers}}
</section>
</div>

<section class="card foot">
<h2>About these numbers</h2>
<ul>
<li>Read {{quantity .S.Input.Records "record"}} from {{quantity (len .S.Input.Sources) "source"}}{{if .S.Filter}}; {{num .S.Input.Filtered}} excluded by the filter ({{.S.Filter}}){{end}}.</li>
{{- if .S.Input.Malformed}}
<li>{{quantity .S.Input.Malformed "malformed line"}} counted and skipped; the first:
<ul>{{range .S.Input.Examples}}<li><code>{{.File}}:{{.Line}}</code>: {{.Message}}</li>{{end}}</ul></li>
{{- end}}
{{- range .S.Input.UnreadSources}}
<li>Could not read to its end: {{.}}</li>
{{- end}}
{{- if .S.Freshness}}
<li>Newest line: {{.S.Freshness}}.</li>
{{- end}}
{{- range .S.Notes}}
<li>{{.}}</li>
{{- end}}
<li>Times are UTC. Generated by <code>edgegate logs report</code>; the same numbers are available as JSON with <code>edgegate logs summary -format json</code>.</li>
</ul>
</section>

</div></main>
</body>
</html>
{{define "lat"}}<td class="n">{{num .TimeTaken.Count}}</td><td class="n">{{secs .TimeTaken.P50}}</td><td class="n">{{secs .TimeTaken.P90}}</td><td class="n">{{secs .TimeTaken.P99}}</td><td class="n">{{secs .TimeTaken.Max}}</td>
{{- if .TimeToFirstByte.Count}}<td class="n">{{secs .TimeToFirstByte.P50}}</td><td class="n">{{secs .TimeToFirstByte.P90}}</td><td class="n">{{secs .TimeToFirstByte.P99}}</td><td class="n">{{secs .TimeToFirstByte.Max}}</td>
{{- else}}<td class="n">-</td><td class="n">-</td><td class="n">-</td><td class="n">-</td>{{end}}{{end}}
`
