// Printer detail: live values, a temperature chart of the last minutes, controls for operators.

import { useEffect, useRef, useState } from "../../vendor/hooks.js";
import { api, can } from "../api.js";
import { farm, refreshPrinters, watchPrinter } from "../live.js";
import { ago, html, LineChart, Loading, Problem, temp } from "../ui.js";
import { PrinterSpools } from "./filament.js";
import { PrinterHistory } from "./history.js";
import { Errors, JobLine, shownState, StateBadge, Trays, usePrinter } from "./farm.js";

const WINDOW_S = 600; // the chart keeps the last ten minutes
const SPEEDS = [
  [1, "Silent (50 %)"],
  [2, "Standard (100 %)"],
  [3, "Sport (124 %)"],
  [4, "Ludicrous (166 %)"],
];

/** Temperature samples of one printer, taken from the live stream while the page is open. */
function useTempHistory(id) {
  const samples = useRef([]);
  useEffect(() => {
    samples.current = [];
    const take = () => {
      const t = farm.status.get(id)?.temps;
      if (!t) return;
      const now = Date.now() / 1000;
      const list = samples.current;
      if (list.length && now - list[list.length - 1].at < 1) return;
      list.push({ at: now, nozzle: t.nozzle, bed: t.bed, chamber: t.chamber });
      while (list.length && list[0].at < now - WINDOW_S) list.shift();
    };
    take();
    return watchPrinter(id, take);
  }, [id]);
  return samples.current;
}

function TempChart({ samples }) {
  const series = [
    ["Nozzle", "nozzle", "c1"],
    ["Bed", "bed", "c2"],
    ["Chamber", "chamber", "c3"],
  ]
    .map(([name, key, cls]) => ({ name, cls, points: samples.filter((s) => s[key] != null).map((s) => [s.at, s[key]]) }))
    .filter((s) => s.points.length);
  const clock = (x) => new Date(x * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return html`<${LineChart} title="Temperatures (°C) since this page opened, last 10 min" series=${series} xFormat=${clock} yFormat=${(y) => `${Math.round(y)}°`} />`;
}

function Controls({ id, status, cfg }) {
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const [confirmStop, setConfirmStop] = useState(false);
  if (!can("operator")) return null;
  const state = shownState(status);
  const send = async (command, params, label) => {
    setBusy(command);
    setError(null);
    setDone(null);
    try {
      await api("POST", `/api/printers/${encodeURIComponent(id)}/command`, params ? { command, params } : { command });
      setDone(`${label}: sent and acknowledged.`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
      setConfirmStop(false);
    }
  };
  const clearBed = async () => {
    setBusy("bed-cleared");
    setError(null);
    setDone(null);
    try {
      await api("POST", `/api/printers/${encodeURIComponent(id)}/bed-cleared`);
      await refreshPrinters();
      setDone("Bed marked clear: the queue may start the next job here.");
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };
  const running = ["printing", "preparing"].includes(state);
  const stoppable = running || state === "paused";
  if (state === "offline")
    return html`<section class="card controls" aria-labelledby="ctl-title"><h2 id="ctl-title">Controls</h2>
      <p class="muted">Controls return when the printer is back online.</p></section>`;
  return html`<section class="card controls" aria-labelledby="ctl-title">
    <h2 id="ctl-title">Controls</h2>
    <div class="buttons">
      ${running && html`<button type="button" disabled=${busy} onClick=${() => send("pause", null, "Pause")}>Pause</button>`}
      ${state === "paused" && html`<button type="button" class="primary" disabled=${busy} onClick=${() => send("resume", null, "Resume")}>Resume</button>`}
      ${stoppable && !confirmStop && html`<button type="button" class="danger" disabled=${busy} onClick=${() => setConfirmStop(true)}>Stop…</button>`}
      ${confirmStop && html`<span class="confirm" role="group" aria-label="confirm stop">Stop this print for good?
        <button type="button" class="danger" onClick=${() => send("stop", null, "Stop")}>Yes, stop</button>
        <button type="button" onClick=${() => setConfirmStop(false)}>Keep printing</button></span>`}
      ${cfg.bed_clear === false && !running && html`<button type="button" class="primary" disabled=${busy} onClick=${clearBed}>Bed cleared</button>`}
      ${status?.light != null && html`<button type="button" aria-pressed=${!!status.light} disabled=${busy} onClick=${() => send("light", { on: !status.light }, "Light")}>
        Light ${status.light ? "on" : "off"}</button>`}
    </div>
    ${status?.speed_level != null && html`<div class="field inline">
      <label for="speed">Print speed</label>
      <select id="speed" value=${status.speed_level} disabled=${busy} onChange=${(e) => send("speed", { level: Number(e.currentTarget.value) }, "Speed")}>
        ${SPEEDS.map(([v, label]) => html`<option value=${v}>${label}</option>`)}
      </select>
    </div>`}
    ${busy && html`<p role="status" class="muted">Sending ${busy}…</p>`}
    ${done && html`<p role="status" class="ok">${done}</p>`}
    <${Problem} error=${error} />
  </section>`;
}

export function PrinterPage({ params }) {
  const id = decodeURIComponent(params[0]);
  const [cfg, status] = usePrinter(id);
  const samples = useTempHistory(id);
  const [missing, setMissing] = useState(null);
  useEffect(() => {
    if (farm.loaded && !cfg) api("GET", `/api/printers/${encodeURIComponent(id)}`).catch(setMissing);
  }, [id, farm.loaded]);
  if (missing) return html`<h1>Printer</h1><${Problem} error=${missing} /><p><a href="#/">Back to the farm</a></p>`;
  if (!cfg) return html`<${Loading} what="Loading printer" />`;
  const state = shownState(status);
  const t = status?.temps || {};
  const fans = Object.entries(status?.fans || {});
  return html`<p class="crumbs"><a href="#/">Farm</a> › ${cfg.name}</p>
    <div class="detail-head">
      <h1>${cfg.name}</h1>
      <${StateBadge} state=${state} />
    </div>
    <p class="muted">${cfg.model || "unknown model"} · ${cfg.protocol} · ${cfg.host}${cfg.tags?.length ? ` · tags: ${cfg.tags.join(", ")}` : ""}</p>
    ${state === "offline" && html`<p class="banner offline" role="status">This printer is offline (link: ${status?.connection || "unknown"}), last seen ${ago(status?.last_seen)}.
      ${status?.last_error ? ` Last error: ${status.last_error}.` : ""} Values below are the last known ones.</p>`}
    <div class="detail">
      <section class="card" aria-labelledby="job-title">
        <h2 id="job-title">Job</h2>
        <${JobLine} status=${status} />
        <${Errors} errors=${status?.errors} />
      </section>
      <${Controls} id=${id} status=${status} cfg=${cfg} />
      <section class="card" aria-labelledby="live-title">
        <h2 id="live-title">Live values</h2>
        <dl class="facts wide">
          <div><dt>Nozzle</dt><dd>${temp(t.nozzle, t.nozzle_target)}</dd></div>
          <div><dt>Bed</dt><dd>${temp(t.bed, t.bed_target)}</dd></div>
          ${t.chamber != null && html`<div><dt>Chamber</dt><dd>${temp(t.chamber)}</dd></div>`}
          ${fans.map(([name, v]) => html`<div><dt>Fan ${name}</dt><dd>${v}%</dd></div>`)}
          ${status?.speed_level != null && html`<div><dt>Speed level</dt><dd>${status.speed_level}</dd></div>`}
          ${status?.wifi_signal != null && html`<div><dt>Wi-Fi</dt><dd>${status.wifi_signal} dBm</dd></div>`}
          <div><dt>Connection</dt><dd>${status?.connection || "–"}</dd></div>
          <div><dt>Last report</dt><dd>${ago(status?.last_seen)}</dd></div>
        </dl>
      </section>
      <section class="card chart-card" aria-labelledby="chart-title">
        <h2 id="chart-title">Temperatures</h2>
        <${TempChart} samples=${samples} />
      </section>
      <section class="card span-all" aria-labelledby="trays-title">
        <h2 id="trays-title">Filament</h2>
        ${status?.ams?.length ? html`<${Trays} status=${status} />` : html`<p class="muted">No AMS or spool reported.</p>`}
        <h3>Assigned spools</h3>
        <${PrinterSpools} id=${id} status=${status} />
      </section>
      <section class="card span-all" aria-labelledby="hist-title">
        <h2 id="hist-title">Recent prints</h2>
        <${PrinterHistory} id=${id} />
      </section>
    </div>`;
}
