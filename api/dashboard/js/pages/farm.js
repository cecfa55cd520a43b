// Farm overview: one card per printer, each updating itself in place from /ws. The grid only
// re-renders when the set or order of visible printers changes (checked once a second).

import { useEffect, useRef, useState } from "../../vendor/hooks.js";
import { farm, on, refreshPrinters, watchPrinter } from "../live.js";
import { trayLabel } from "./filament.js";
import { ago, cssColor, duration, eta, html, Loading, memo, Problem, STATES, temp } from "../ui.js";

// Which cards are on (or near) the screen. A card off screen is not re-rendered when its
// printer changes, only marked stale and redrawn when it scrolls into view: with 200 printers
// most updates then cost nothing but the store write.
const shown = new WeakMap(); // element -> boolean
const onShown = new WeakMap(); // element -> callback(isShown)
const observer =
  typeof IntersectionObserver === "function"
    ? new IntersectionObserver(
        (entries) => {
          for (const e of entries) {
            shown.set(e.target, e.isIntersecting);
            onShown.get(e.target)?.(e.isIntersecting);
          }
        },
        { rootMargin: "300px 0px" },
      )
    : null;

/**
 * Re-render the caller whenever printer `id` changes; returns [config, status]. With `ref` (the
 * card's element), changes while the element is off screen wait until it is shown again.
 */
export function usePrinter(id, ref = null) {
  const [, setVersion] = useState(0);
  useEffect(() => {
    const bump = () => setVersion((v) => v + 1);
    const el = ref?.current;
    if (!el || !observer) return watchPrinter(id, bump);
    let stale = false;
    onShown.set(el, (isShown) => {
      if (isShown && stale) {
        stale = false;
        bump();
      }
    });
    observer.observe(el);
    const off = watchPrinter(id, () => {
      if (shown.get(el) === false) stale = true;
      else bump();
    });
    return () => {
      off();
      observer.unobserve(el);
      onShown.delete(el);
    };
  }, [id]);
  return [farm.printers.get(id), farm.status.get(id)];
}

/** What the card shows as the state: offline when the hub has no link to the printer. */
export function shownState(status) {
  if (!status) return "offline";
  if (status.connection && status.connection !== "online") return "offline";
  return status.state || "offline";
}

export function StateBadge({ state }) {
  return html`<span class=${`badge s-${state}`}>${state}</span>`;
}

export function Swatch({ tray, active }) {
  const color = cssColor(tray.color);
  // `slot` is the printer-wide tray number (AMS unit * 4 + tray, 254 the external spool).
  const where = trayLabel(tray.slot);
  const label = tray.empty
    ? `${where}: empty`
    : `${where}: ${tray.material || "unknown material"}${tray.remain != null && tray.remain >= 0 ? `, ${tray.remain}% left` : ""}${active ? ", in use" : ""}`;
  return html`<li class=${`tray${active ? " active" : ""}${tray.empty ? " empty" : ""}`} title=${label}>
    <svg class="swatch" viewBox="0 0 20 20" aria-hidden="true">
      ${tray.empty || !color
        ? html`<rect x="1" y="1" width="18" height="18" rx="4" class="no-colour" />`
        : html`<rect x="1" y="1" width="18" height="18" rx="4" fill=${color} class="colour" />`}
    </svg>
    <span class="sr">${label}</span>
    <span class="remain" aria-hidden="true">${tray.empty ? "–" : tray.remain != null && tray.remain >= 0 ? `${tray.remain}%` : "?"}</span>
  </li>`;
}

export function Trays({ status }) {
  const units = status?.ams || [];
  if (!units.length) return null;
  return html`<div class="trays">
    ${units.map((u) => html`<ul class="unit" aria-label=${u.unit === 254 ? "external spool" : `AMS ${u.unit + 1}`}>
      ${u.trays.map((t) => html`<${Swatch} tray=${t} active=${status.active_tray === t.slot} />`)}
    </ul>`)}
  </div>`;
}

export function Errors({ errors }) {
  if (!errors || !errors.length) return null;
  return html`<ul class="errors" aria-label="active errors">
    ${errors.map((e) => html`<li class=${`sev-${e.severity || "error"}`}><code>${e.code}</code> ${e.text || "no description known for this code"}</li>`)}
  </ul>`;
}

export function JobLine({ status }) {
  const job = status?.job;
  const state = shownState(status);
  const active = ["printing", "paused", "preparing"].includes(state);
  if (!job || !active) return html`<div class="job idle"><span class="muted">${job && job.file ? `Last: ${job.file}` : "No print"}</span></div>`;
  const pct = Math.max(0, Math.min(100, Number(job.progress) || 0));
  return html`<div class="job">
    <div class="file" title=${job.file}>${job.file}</div>
    <progress max="100" value=${pct} aria-label=${`progress of ${job.file}`}></progress>
    <dl class="facts">
      <div><dt>Progress</dt><dd class="pct">${Math.floor(pct)}%</dd></div>
      <div><dt>Layer</dt><dd>${job.layer != null ? `${job.layer}${job.total_layers ? `/${job.total_layers}` : ""}` : "–"}</dd></div>
      <div><dt>Left</dt><dd>${duration(job.remaining_s)}</dd></div>
      <div><dt>ETA</dt><dd>${state === "paused" ? "paused" : eta(job.remaining_s)}</dd></div>
    </dl>
  </div>`;
}

function Card({ id }) {
  const ref = useRef(null);
  const [cfg, status] = usePrinter(id, ref);
  if (!cfg) return html`<li ref=${ref} hidden></li>`;
  const state = shownState(status);
  const t = status?.temps || {};
  const offline = state === "offline";
  return html`<li ref=${ref} class=${`card printer s-${state}`} data-printer=${id}>
    <div class="cam" aria-hidden="true"><span>No camera</span></div>
    <div class="head">
      <h2><a href=${`#/printers/${id}`}>${cfg.name}</a></h2>
      <${StateBadge} state=${state} />
    </div>
    <div class="sub muted">${cfg.model || "unknown model"} · ${cfg.protocol}${cfg.tags && cfg.tags.length ? ` · ${cfg.tags.join(", ")}` : ""}</div>
    ${offline
      ? html`<p class="offline-note">${status?.connection && status.connection !== "online" ? `Link: ${status.connection}` : "Offline"}, last seen ${ago(status?.last_seen)}${status?.last_error ? html`<br /><span class="muted">${status.last_error}</span>` : ""}</p>`
      : html`<${JobLine} status=${status} />
        <dl class="temps">
          <div><dt>Nozzle</dt><dd>${temp(t.nozzle, t.nozzle_target)}</dd></div>
          <div><dt>Bed</dt><dd>${temp(t.bed, t.bed_target)}</dd></div>
        </dl>
        <${Trays} status=${status} />
        <${Errors} errors=${status?.errors} />
        ${cfg.bed_clear === false && !["printing", "preparing", "paused"].includes(state) && html`<p class="bed-note">Bed not cleared: the queue waits.</p>`}`}
  </li>`;
}

const PrinterCard = memo(Card);

const SORTS = {
  name: (a, b) => a.cfg.name.localeCompare(b.cfg.name),
  state: (a, b) => STATES.indexOf(a.state) - STATES.indexOf(b.state) || SORTS.name(a, b),
  progress: (a, b) => (b.status?.job?.progress ?? -1) - (a.status?.job?.progress ?? -1) || SORTS.name(a, b),
  left: (a, b) => (remaining(a) ?? Infinity) - (remaining(b) ?? Infinity) || SORTS.name(a, b),
};

function remaining(row) {
  return ["printing", "paused", "preparing"].includes(row.state) ? row.status?.job?.remaining_s : null;
}

function visible(filters) {
  const q = filters.q.trim().toLowerCase();
  const rows = [];
  const counts = {};
  for (const [id, cfg] of farm.printers) {
    const status = farm.status.get(id);
    const state = shownState(status);
    counts[state] = (counts[state] || 0) + 1;
    if (q && !cfg.name.toLowerCase().includes(q)) continue;
    if (filters.state && state !== filters.state) continue;
    if (filters.protocol && cfg.protocol !== filters.protocol) continue;
    if (filters.tag && !(cfg.tags || []).includes(filters.tag)) continue;
    rows.push({ id, cfg, status, state });
  }
  rows.sort(SORTS[filters.sort] || SORTS.name);
  return { ids: rows.map((r) => r.id), counts };
}

function Select({ id, label, value, options, onChange }) {
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <select id=${id} value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${options.map(([v, text]) => html`<option value=${v}>${text}</option>`)}
    </select>
  </div>`;
}

export function FarmPage() {
  const [filters, setFilters] = useState({ q: "", state: "", tag: "", protocol: "", sort: "name" });
  const [view, setView] = useState({ ids: [], counts: {} });
  const [loaded, setLoaded] = useState(farm.loaded);
  const [error, setError] = useState(null);
  const last = useRef("");
  const set = (key) => (value) => setFilters((f) => ({ ...f, [key]: value }));

  const recompute = () => {
    const next = visible(filters);
    const key = next.ids.join(",") + JSON.stringify(next.counts);
    if (key !== last.current) {
      last.current = key;
      setView(next);
    }
  };
  const load = () => {
    setError(null);
    refreshPrinters().then(() => setLoaded(true), setError);
  };
  useEffect(() => {
    if (!farm.loaded) load();
    return on("printers", () => {
      setLoaded(true);
      recompute();
    });
  }, []);
  useEffect(() => {
    recompute();
    // States change filters and sort orders: re-check the order once a second, not per message.
    const timer = setInterval(recompute, 1000);
    const off = on("printers", recompute);
    return () => {
      clearInterval(timer);
      off();
    };
  }, [filters]);

  if (error && !loaded) return html`<h1>Farm</h1><${Problem} error=${error} onRetry=${load} />`;
  if (!loaded) return html`<h1>Farm</h1><${Loading} what="Loading printers" />`;
  if (farm.printers.size === 0)
    return html`<h1>Farm</h1>
      <div class="empty card">
        <h2>No printers yet</h2>
        <p>Add printers with <code>POST /api/printers</code> (see the <a href="/api/docs">API docs</a>) or
        <code>printforge printers import fleet.json</code>. They appear here as soon as they are added.</p>
      </div>`;

  const tags = [...new Set([...farm.printers.values()].flatMap((p) => p.tags || []))].sort();
  const protocols = [...new Set([...farm.printers.values()].map((p) => p.protocol))].sort();
  const total = farm.printers.size;
  return html`<div class="farm-head">
      <h1>Farm <span class="muted">(${view.ids.length === total ? total : `${view.ids.length} of ${total}`})</span></h1>
      <ul class="counts" aria-label="printers by state">
        ${STATES.filter((s) => view.counts[s]).map((s) => html`<li><button type="button" class=${`badge s-${s}`} aria-pressed=${filters.state === s}
          onClick=${() => set("state")(filters.state === s ? "" : s)}>${s}: ${view.counts[s]}</button></li>`)}
      </ul>
    </div>
    <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
      <div class="field grow">
        <label for="f-q">Search by name</label>
        <input id="f-q" type="search" value=${filters.q} onInput=${(e) => set("q")(e.currentTarget.value)} placeholder="Printer name" />
      </div>
      <${Select} id="f-state" label="State" value=${filters.state} onChange=${set("state")} options=${[["", "All states"], ...STATES.map((s) => [s, s])]} />
      <${Select} id="f-tag" label="Tag" value=${filters.tag} onChange=${set("tag")} options=${[["", "All tags"], ...tags.map((t) => [t, t])]} />
      <${Select} id="f-protocol" label="Protocol" value=${filters.protocol} onChange=${set("protocol")} options=${[["", "All protocols"], ...protocols.map((p) => [p, p])]} />
      <${Select} id="f-sort" label="Sort by" value=${filters.sort} onChange=${set("sort")}
        options=${[["name", "Name"], ["state", "State"], ["progress", "Progress"], ["left", "Time left"]]} />
    </form>
    ${view.ids.length === 0
      ? html`<p class="empty" role="status">No printer matches these filters.</p>`
      : html`<ul class="grid" aria-label="printers">${view.ids.map((id) => html`<${PrinterCard} key=${id} id=${id} />`)}</ul>`}`;
}
