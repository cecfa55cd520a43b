// Print history: filters, pages, CSV export (fetched with the Authorization header, never a
// token in a URL), charts per day, and a printer's recent prints for its detail page.

import { useEffect, useState } from "../../vendor/hooks.js";
import { api } from "../api.js";
import { farm, on } from "../live.js";
import { BarList, bodyEnum, duration, html, LineChart, Loading, Problem, useLoad, when } from "../ui.js";
import { Pager } from "./notifications.js";

const PER_PAGE = 25;
const OUTCOMES = ["completed", "failed", "cancelled", "unknown", "running"];

function OutcomeBadge({ record }) {
  const outcome = record.outcome || "running";
  const cls = { completed: "s-finished", failed: "s-failed", cancelled: "s-paused", running: "s-printing" }[outcome] || "";
  return html`<span class=${`badge ${cls}`}>${outcome}</span>`;
}

/** A date input's value (local day) as an RFC 3339 instant: the day's start, or the next day's. */
function dayBound(value, end) {
  if (!value) return null;
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + (end ? 1 : 0)).toISOString();
}

function queryOf(filters) {
  const q = new URLSearchParams();
  if (filters.printer) q.set("printer", filters.printer);
  if (filters.outcome) q.set("outcome", filters.outcome);
  if (filters.material) q.set("material", filters.material);
  if (filters.file.trim()) q.set("file", filters.file.trim());
  const since = dayBound(filters.since, false);
  const until = dayBound(filters.until, true);
  if (since) q.set("since", since);
  if (until) q.set("until", until);
  return q;
}

/** Download the CSV export through fetch (Authorization header) and hand it to the browser. */
async function exportCsv(query) {
  const res = await api("GET", `/api/history/export?${query}`, undefined, { raw: true });
  const blob = await res.blob();
  const disposition = res.headers.get("Content-Disposition") || "";
  const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || "print-history.csv";
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function HistoryTable({ items, showPrinter = true }) {
  return html`<div class="table-wrap"><table class="history">
    <thead><tr><th scope="col">Started</th>${showPrinter && html`<th scope="col">Printer</th>`}<th scope="col">File</th><th scope="col">Outcome</th>
      <th scope="col">Duration</th><th scope="col">Filament</th><th scope="col">Cost</th><th scope="col">Notes</th></tr></thead>
    <tbody>${items.map((r) => html`<tr data-print=${r.id}>
      <td>${when(r.started_at)}</td>
      ${showPrinter && html`<td title=${r.printer?.id}>${r.printer?.name || "removed printer"}</td>`}
      <td class="file-cell">${r.file}</td>
      <td><${OutcomeBadge} record=${r} />${r.outcome === null && r.progress != null ? ` ${Math.round(r.progress)}%` : ""}</td>
      <td class="num">${duration(r.duration_s)}</td>
      <td class="num">${r.filament?.grams != null ? `${Math.round(r.filament.grams)} g` : "–"}</td>
      <td class="num">${r.cost != null ? r.cost.toFixed(2) : "–"}</td>
      <td>${r.notes || ""}${r.errors?.length ? html`<div class="muted">${r.errors.map((e) => `${e.code} ${e.message || ""}`).join("; ")}</div>` : ""}</td>
    </tr>`)}</tbody>
  </table></div>`;
}

/** Grams per day of the most used materials (five at most; the rest together). */
function materialSeries(days) {
  const totals = {};
  for (const [, d] of days) for (const [m, g] of Object.entries(d.grams_by_material || {})) totals[m] = (totals[m] || 0) + g;
  const top = Object.keys(totals).sort((a, b) => totals[b] - totals[a]);
  const shown = top.slice(0, 5);
  const series = shown.map((m, i) => ({ name: m, cls: `c${i + 1}`, points: days.map(([x, d]) => [x, d.grams_by_material?.[m] || 0]) }));
  if (top.length > 5)
    series.push({ name: "other", cls: "c6", points: days.map(([x, d]) => [x, top.slice(5).reduce((sum, m) => sum + (d.grams_by_material?.[m] || 0), 0)]) });
  return series.length ? series : [{ name: "grams", cls: "c2", points: days.map(([x, d]) => [x, d.grams]) }];
}

function Charts({ query }) {
  const stats = useLoad(() => api("GET", `/api/history/stats?${query}`), [query]);
  if (stats.error) return html`<${Problem} error=${stats.error} onRetry=${stats.reload} />`;
  if (!stats.data) return html`<${Loading} what="Loading statistics" />`;
  const s = stats.data;
  const days = s.per_day.map((d) => [Date.parse(`${d.date}T00:00:00Z`) / 1000, d]);
  const day = (x) => new Date(x * 1000).toISOString().slice(5, 10);
  const rate = days.filter(([, d]) => d.completed + d.failed + d.cancelled > 0).map(([x, d]) => [x, (100 * d.completed) / (d.completed + d.failed + d.cancelled)]);
  const printerName = (id) => farm.printers.get(id)?.name || id || "unknown";
  const rateText = s.success_rate == null ? "–" : `${Math.round(s.success_rate * 100)}%`;
  return html`<p class="summary">
      ${`${s.prints} prints · success rate ${rateText} · ${Math.round(s.print_hours)} print hours · ${Math.round(s.filament.grams)} g filament · cost ${s.filament.cost.toFixed(2)} `}
      <span class="muted">(${when(s.since)} – ${when(s.until)})</span>
    </p>
    <div class="detail charts">
      <section class="card"><h2>Prints per day</h2>
        <${LineChart} bars title="prints per day" xFormat=${day} yFormat=${(y) => String(Math.round(y))}
          series=${[{ name: "completed", cls: "c3", points: days.map(([x, d]) => [x, d.completed]) }, { name: "failed or cancelled", cls: "c1", points: days.map(([x, d]) => [x, d.failed + d.cancelled]) }]} /></section>
      <section class="card"><h2>Success rate per day</h2>
        <${LineChart} title="completed of ended prints (%)" xFormat=${day} yFormat=${(y) => `${Math.round(y)}%`} series=${[{ name: "success rate", cls: "c3", points: rate }]} /></section>
      <section class="card"><h2>Filament per day by material</h2>
        <${LineChart} bars title="grams per day" xFormat=${day} yFormat=${(y) => `${Math.round(y)} g`} series=${materialSeries(days)} /></section>
      <section class="card"><h2>Filament by material</h2>
        <${BarList} title="grams by material" unit="g" items=${s.filament.by_material.map((r) => ({ label: r.material || "unknown", value: r.grams }))} />
        <${BarList} title="grams by printer" unit="g" items=${s.filament.by_printer.map((r) => ({ label: printerName(r.printer_id), value: r.grams }))} /></section>
    </div>`;
}

export function HistoryPage() {
  const [filters, setFilters] = useState({ printer: "", outcome: "", material: "", file: "", since: "", until: "" });
  const [page, setPage] = useState(1);
  const [materials, setMaterials] = useState([]);
  const [exporting, setExporting] = useState(null);
  useEffect(() => {
    bodyEnum("/api/filaments", "post", "material").then(setMaterials, () => {});
  }, []);
  const query = queryOf(filters).toString();
  const list = useLoad(() => api("GET", `/api/history?${query}${query ? "&" : ""}page=${page}&per_page=${PER_PAGE}`), [query, page]);
  const set = (key) => (e) => {
    setPage(1);
    setFilters((f) => ({ ...f, [key]: e.currentTarget.value }));
  };
  const download = async () => {
    setExporting("busy");
    try {
      await exportCsv(query);
      setExporting(null);
    } catch (err) {
      setExporting(err);
    }
  };
  const printers = [...farm.printers.values()].sort((a, b) => a.name.localeCompare(b.name));
  return html`<div class="page-head">
      <h1>History</h1>
      <button type="button" onClick=${download} disabled=${exporting === "busy"}>${exporting === "busy" ? "Exporting…" : "Export CSV"}</button>
    </div>
    ${exporting && exporting !== "busy" && html`<${Problem} error=${exporting} />`}
    <form class="filters" onSubmit=${(e) => e.preventDefault()} aria-label="history filters">
      <div class="field"><label for="h-printer">Printer</label><select id="h-printer" value=${filters.printer} onChange=${set("printer")}>
        <option value="">All printers</option>${printers.map((p) => html`<option value=${p.id}>${p.name}</option>`)}</select></div>
      <div class="field"><label for="h-outcome">Outcome</label><select id="h-outcome" value=${filters.outcome} onChange=${set("outcome")}>
        <option value="">Any outcome</option>${OUTCOMES.map((o) => html`<option value=${o}>${o}</option>`)}</select></div>
      <div class="field"><label for="h-material">Material</label><select id="h-material" value=${filters.material} onChange=${set("material")}>
        <option value="">Any material</option>${materials.map((m) => html`<option value=${m}>${m}</option>`)}</select></div>
      <div class="field"><label for="h-file">File contains</label><input id="h-file" type="search" value=${filters.file} onChange=${set("file")} /></div>
      <div class="field"><label for="h-since">From</label><input id="h-since" type="date" value=${filters.since} onChange=${set("since")} /></div>
      <div class="field"><label for="h-until">To</label><input id="h-until" type="date" value=${filters.until} onChange=${set("until")} /></div>
    </form>
    <${Problem} error=${list.error} onRetry=${list.reload} />
    ${list.loading && !list.data && html`<${Loading} what="Loading history" />`}
    ${list.data && (list.data.items.length === 0
      ? html`<p class="empty card">No prints${query ? " match these filters" : " recorded yet"}.</p>`
      : html`<p class="muted">${list.data.total} prints</p><${HistoryTable} items=${list.data.items} />
        <${Pager} page=${page} perPage=${PER_PAGE} total=${list.data.total} onPage=${setPage} />`)}
    <${Charts} query=${query} />`;
}

/** The last prints of one printer, refreshed when one of its prints starts or ends. */
export function PrinterHistory({ id }) {
  const recent = useLoad(() => api("GET", `/api/history?printer=${encodeURIComponent(id)}&per_page=5`), [id]);
  useEffect(() => on("lifecycle", (p) => p.printer_id === id && recent.reload()), [id]);
  if (recent.error) return html`<${Problem} error=${recent.error} onRetry=${recent.reload} />`;
  if (!recent.data) return html`<${Loading} what="Loading recent prints" />`;
  if (recent.data.items.length === 0) return html`<p class="muted">No prints recorded yet.</p>`;
  return html`<${HistoryTable} items=${recent.data.items} showPrinter=${false} />
    <p><a href="#/history">All history</a></p>`;
}
