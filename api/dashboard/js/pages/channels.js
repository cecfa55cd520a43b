// Notification channels (admin): apprise URLs shown masked, event filter, minimum severity,
// quiet hours in a time zone; test message, deliveries, enable / disable, delete.

import { useState } from "../../vendor/hooks.js";
import { api } from "../api.js";
import { html, Loading, Problem, useLoad } from "../ui.js";
import { Deliveries } from "./integrations.js";

const BASE = "/api/notifications/channels";
const SEVERITIES = ["info", "warning", "error"];
// The browser's own zone as the default, and every zone it knows as suggestions.
const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const ZONES = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];

function quiet(q) {
  return q ? `${q.start}–${q.end} ${q.timezone}` : html`<span class="muted">none</span>`;
}

/** The request body from the add form; quiet hours only when a start or an end is given. */
function channelBody(form) {
  const events = String(form.get("events")).split(",").map((e) => e.trim()).filter(Boolean);
  const body = {
    name: String(form.get("name")).trim(),
    url: String(form.get("url")).trim(),
    events,
    min_severity: String(form.get("min_severity")),
  };
  const start = String(form.get("quiet_start") || "");
  const end = String(form.get("quiet_end") || "");
  // A half-filled window goes to the hub as it is: its 400 names the missing field.
  if (start || end) body.quiet_hours = { start, end, timezone: String(form.get("quiet_tz") || "").trim() };
  return body;
}

export function ChannelsPage() {
  const channels = useLoad(() => api("GET", BASE), []);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const [showing, setShowing] = useState(null);
  const path = (c) => `${BASE}/${encodeURIComponent(c.id)}`;
  const act = async (call, message) => {
    setError(null);
    setDone(null);
    try {
      await call();
      if (message) setDone(message);
      channels.reload();
    } catch (err) {
      setError(err);
    }
  };
  const create = (event) => {
    event.preventDefault();
    const formEl = event.currentTarget;
    const body = channelBody(new FormData(formEl));
    act(async () => {
      await api("POST", BASE, body);
      formEl.reset();
    }, `Channel “${body.name}” added.`);
  };
  return html`<h1>Notification channels</h1>
    <p class="muted">Send notifications to people through <a href="https://github.com/caronc/apprise/wiki" target="_blank" rel="noopener">apprise</a> URLs: ntfy, email, Telegram, Discord, Home Assistant, JSON over HTTP and more. URLs hold secrets, so the hub only ever shows them masked.</p>
    ${done && html`<p class="ok" role="status">${done}</p>`}
    <${Problem} error=${error} />
    <${Problem} error=${channels.error} onRetry=${channels.reload} />
    ${channels.loading && !channels.data && html`<${Loading} what="Loading channels" />`}
    ${showing && html`<${Deliveries} base=${path(showing)} title=${showing.name} httpStatus=${false} onClose=${() => setShowing(null)} />`}
    ${channels.data && (channels.data.items.length === 0 ? html`<p class="empty card">No notification channels yet.</p>` : html`<div class="table-wrap"><table class="channels">
      <thead><tr><th scope="col">Name</th><th scope="col">Service and URL</th><th scope="col">Events</th><th scope="col">Minimum severity</th><th scope="col">Quiet hours</th><th scope="col">State</th><th scope="col"><span class="sr">Actions</span></th></tr></thead>
      <tbody>${channels.data.items.map((c) => html`<tr data-channel=${c.id}>
        <th scope="row">${c.name}</th>
        <td class="file-cell">${c.service || "?"}<div class="muted"><code>${c.url || "–"}</code></div></td>
        <td>${c.events.join(", ")}</td>
        <td><span class=${`badge sev-${c.min_severity}`}>${c.min_severity}</span></td>
        <td>${quiet(c.quiet_hours)}</td>
        <td>${c.enabled ? html`<span class="badge s-finished">enabled</span>` : html`<span class="badge s-failed">disabled</span>`}${c.disabled_reason ? html`<div class="muted">${c.disabled_reason}</div>` : ""}</td>
        <td class="actions">
          <button type="button" onClick=${() => act(() => api("POST", `${path(c)}/test`), `Test message to “${c.name}” queued.`)}>Test</button>
          <button type="button" onClick=${() => setShowing(c)}>Deliveries</button>
          <button type="button" onClick=${() => act(() => api("PUT", path(c), { enabled: !c.enabled }))}>${c.enabled ? "Disable" : "Enable"}</button>
          <button type="button" class="danger" onClick=${() => confirm(`Delete the channel “${c.name}” and its messages?`) && act(() => api("DELETE", path(c)).then(() => showing?.id === c.id && setShowing(null)), "Channel deleted.")}>Delete</button>
        </td></tr>`)}</tbody></table></div>`)}
    <form class="card form" onSubmit=${create} aria-labelledby="add-channel">
      <h2 id="add-channel">Add a channel</h2>
      <div class="row">
        <div class="field"><label for="ch-name">Name</label><input id="ch-name" name="name" required maxlength="100" placeholder="e.g. Night shift phone" /></div>
        <div class="field grow"><label for="ch-url">Apprise URL</label><input id="ch-url" name="url" required maxlength="2048" autocomplete="off" spellcheck="false" placeholder="ntfy://farm-alerts" /></div>
        <div class="field grow"><label for="ch-events">Events (comma-separated; * for all)</label><input id="ch-events" name="events" required value="*" /></div>
        <div class="field"><label for="ch-sev">Minimum severity</label><select id="ch-sev" name="min_severity">${SEVERITIES.map((s) => html`<option value=${s}>${s}</option>`)}</select></div>
      </div>
      <fieldset class="row quiet">
        <legend>Quiet hours (optional: held until the window ends)</legend>
        <div class="field"><label for="ch-qstart">From</label><input id="ch-qstart" name="quiet_start" type="time" /></div>
        <div class="field"><label for="ch-qend">Until</label><input id="ch-qend" name="quiet_end" type="time" /></div>
        <div class="field tz"><label for="ch-qtz">Time zone</label><input id="ch-qtz" name="quiet_tz" list="ch-zones" value=${LOCAL_ZONE} maxlength="64" /></div>
        <datalist id="ch-zones">${ZONES.map((z) => html`<option value=${z} />`)}</datalist>
      </fieldset>
      <div class="buttons"><button type="submit" class="primary">Add channel</button></div>
    </form>`;
}
