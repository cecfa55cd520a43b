// Shared building blocks: the html tag, memo, formatting, messages, the SVG line chart.
// Everything is rendered through Preact, which writes strings as text nodes: no value from a
// printer or user is ever parsed as HTML.

import { Component, h } from "../vendor/preact.js";
import { useEffect, useRef, useState } from "../vendor/hooks.js";
import htm from "../vendor/htm.js";

export const html = htm.bind(h);

/** A component that re-renders only when a prop changed (its own state still updates it). */
export function memo(fn) {
  class Memo extends Component {
    shouldComponentUpdate(next) {
      for (const k in next) if (next[k] !== this.props[k]) return true;
      for (const k in this.props) if (!(k in next)) return true;
      return false;
    }
    render(props) {
      return h(fn, props);
    }
  }
  Memo.displayName = `Memo(${fn.name})`;
  return Memo;
}

export const STATES = ["printing", "preparing", "paused", "idle", "finished", "failed", "cancelled", "error", "offline"];

/** "1h 05m", "4 min", "35 s". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

// Formatters are built once: toLocale*String with options builds one per call (slow).
const HOUR_MINUTE = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });
const WEEKDAY = new Intl.DateTimeFormat([], { weekday: "short" });
const DATE_TIME = new Intl.DateTimeFormat([], { dateStyle: "short", timeStyle: "short" });

/** Wall-clock time `seconds` from now, e.g. "14:32" (with the weekday when not today). */
export function eta(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const at = new Date(Date.now() + seconds * 1000);
  const time = HOUR_MINUTE.format(at);
  return at.toDateString() === new Date().toDateString() ? time : `${WEEKDAY.format(at)} ${time}`;
}

/** A time from the API as Unix seconds: REST answers RFC 3339 strings, /ws Unix seconds. */
export function seconds(ts) {
  if (ts === null || ts === undefined || ts === "") return null;
  if (typeof ts === "number") return ts;
  const ms = Date.parse(ts);
  return Number.isNaN(ms) ? null : ms / 1000;
}

/** A time from the API as local date and time. */
export function when(ts) {
  const s = seconds(ts);
  if (s === null) return "–";
  return DATE_TIME.format(new Date(s * 1000));
}

/** How long ago a time from the API was. */
export function ago(ts) {
  const s = seconds(ts);
  if (s === null) return "never";
  return `${duration(Date.now() / 1000 - s)} ago`;
}

/** "215 / 220 °C" from a measured and a target temperature. */
export function temp(value, target) {
  if (value === null || value === undefined) return "–";
  const v = `${Math.round(value)}`;
  return target ? `${v} / ${Math.round(target)} °C` : `${v} °C`;
}

/** A colour "RRGGBBAA" or "RRGGBB" from a printer as a CSS colour, or null when malformed. */
export function cssColor(raw) {
  if (typeof raw !== "string" || !/^[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$/.test(raw)) return null;
  return `#${raw.slice(0, 6)}`;
}

/** An API error (ApiError or any Error) as an alert naming the hub's `detail`. */
export function Problem({ error, onRetry }) {
  if (!error) return null;
  return html`<div class="problem" role="alert">
    <strong>${error.status ? `Error ${error.status}` : "Error"}:</strong> ${error.message}
    ${onRetry && html` <button type="button" class="link" onClick=${onRetry}>Try again</button>`}
  </div>`;
}

export function Loading({ what = "Loading" }) {
  return html`<p class="loading" role="status"><span class="spinner" aria-hidden="true"></span>${what}…</p>`;
}

/** Run an async loader on mount (and when deps change): {data, error, loading, reload}. */
export function useLoad(loader, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const run = () => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true, error: null }));
    loader().then(
      (data) => mine === seq.current && setState({ data, error: null, loading: false }),
      (error) => mine === seq.current && setState({ data: null, error, loading: false }),
    );
  };
  useEffect(run, deps);
  return { ...state, reload: run };
}

/** Set an element style through the CSSOM (allowed by the CSP, unlike style attributes). */
export function useStyle(ref, prop, value) {
  useEffect(() => {
    if (ref.current) ref.current.style.setProperty(prop, value);
  }, [value]);
}

/** A styled span: a colour swatch or a bar fill, its style set through the CSSOM. */
export function Styled({ tag = "span", cls, prop, value, children, ...rest }) {
  const ref = useRef(null);
  useStyle(ref, prop, value);
  return h(tag, { ref, class: cls, ...rest }, children);
}

/**
 * A line chart in SVG. series: [{name, cls, points: [[x, y], ...]}]; x and y are numbers.
 * xFormat and yFormat label the axes. Lines only: no library needed for a few hundred points.
 */
export function LineChart({ series, title, xFormat = String, yFormat = String, height = 180, bars = false }) {
  const W = 600, H = height, L = 44, R = 8, T = 10, B = 22;
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return html`<p class="muted">No data yet.</p>`;
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(0, ...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) x1 = x0 + 1;
  // Counts and grams of a quiet period: still four whole steps, not fractions of one.
  if (y1 - y0 < 4) y1 = y0 + 4;
  // Round steps (1, 2, 2.5 or 5 times a power of ten) for about four grid lines.
  const raw = (y1 - y0) / 4;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((v) => v >= raw);
  y1 = Math.ceil(y1 / step) * step;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const ticks = [];
  for (let y = y0; y <= y1 + step / 2; y += step) ticks.push(y);
  const xticks = [0, 0.5, 1].map((f) => x0 + f * (x1 - x0));
  const bw = bars ? Math.max(2, (W - L - R) / (new Set(all.map((p) => p[0])).size + 1) / series.length) : 0;
  return html`<figure class="chart">
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label=${title}>
      ${ticks.map((y) => html`<g class="grid"><line x1=${L} x2=${W - R} y1=${sy(y)} y2=${sy(y)} /><text x=${L - 4} y=${sy(y) + 4} text-anchor="end">${yFormat(y)}</text></g>`)}
      ${xticks.map((x, i) => html`<text class="axis" x=${sx(x)} y=${H - 6} text-anchor=${["start", "middle", "end"][i]}>${xFormat(x)}</text>`)}
      ${series.map((s, si) =>
        bars
          ? html`<g class=${`series ${s.cls}`}>${s.points.map(([x, y]) => html`<rect x=${sx(x) - (bw * series.length) / 2 + si * bw} y=${sy(y)} width=${bw} height=${Math.max(0, sy(y0) - sy(y))}><title>${`${s.name} ${xFormat(x)}: ${yFormat(y)}`}</title></rect>`)}</g>`
          : html`<g class=${`series ${s.cls}`}><polyline class=${s.cls} points=${s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")} />
              ${s.points.length <= 40 && s.points.map(([x, y]) => html`<circle cx=${sx(x)} cy=${sy(y)} r="3"><title>${`${s.name} ${xFormat(x)}: ${yFormat(y)}`}</title></circle>`)}</g>`,
      )}
    </svg>
    <figcaption>${title}: ${series.map((s) => html`<span class=${`key ${s.cls}`}>${s.name}</span>`)}</figcaption>
  </figure>`;
}

/** Horizontal bars for a few labelled values: [{label, value}], largest first. */
export function BarList({ items, title, unit = "" }) {
  if (!items.length) return html`<p class="muted">No ${title} yet.</p>`;
  const sorted = [...items].sort((a, b) => b.value - a.value);
  const max = Math.max(...sorted.map((i) => i.value), 1);
  const W = 420, row = 20, L = 130, H = sorted.length * row + 4;
  return html`<figure class="chart bars">
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label=${`${title}: ${sorted.map((i) => `${i.label} ${Math.round(i.value)} ${unit}`).join(", ")}`}>
      ${sorted.map((i, n) => html`<g>
        <text x=${L - 6} y=${n * row + 15} text-anchor="end">${String(i.label).slice(0, 24)}</text>
        <rect class="c2" x=${L} y=${n * row + 4} height="14" width=${Math.max(1, ((W - L - 70) * i.value) / max)} />
        <text x=${L + Math.max(1, ((W - L - 70) * i.value) / max) + 6} y=${n * row + 15}>${`${Math.round(i.value)} ${unit}`}</text>
      </g>`)}
    </svg>
    <figcaption>${title}</figcaption>
  </figure>`;
}

let openapi = null;

/** The `enum` of a request body field as the hub's OpenAPI document declares it. */
export async function bodyEnum(path, method, field) {
  openapi ||= fetch("/api/openapi.json").then((r) => r.json());
  const doc = await openapi;
  const schema = doc.paths?.[path]?.[method]?.requestBody?.content?.["application/json"]?.schema;
  return schema?.properties?.[field]?.enum || [];
}
