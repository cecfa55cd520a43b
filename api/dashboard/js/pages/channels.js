// Notification channels (admin): apprise URLs shown masked, event filter, minimum severity,
// quiet hours in a time zone; change, test message, deliveries, enable / disable, delete.

import { useEffect, useRef, useState } from "../../vendor/hooks.js";
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

/**
 * The request body from the form. Editing, an empty URL keeps the stored one (the hub never
 * sends it back) and empty quiet hours remove them; adding, empty quiet hours are left out.
 */
function channelBody(form, editing) {
  const events = String(form.get("events")).split(",").map((e) => e.trim()).filter(Boolean);
  const body = { name: String(form.get("name")).trim(), events, min_severity: String(form.get("min_severity")) };
  const url = String(form.get("url")).trim();
  if (url || !editing) body.url = url;
  const start = String(form.get("quiet_start") || "");
  const end = String(form.get("quiet_end") || "");
  // A half-filled window goes to the hub as it is: its 400 names the missing field.
  if (start || end) body.quiet_hours = { start, end, timezone: String(form.get("quiet_tz") || "").trim() };
  else if (editing) body.quiet_hours = null;
  return body;
}

/**
 * Add a channel, or change `editing` (keyed by it, so the fields start from its values). The
 * fields are uncontrolled (default values): a re-render, e.g. to show an error, keeps what the
 * user typed.
 */
function ChannelForm({ editing, onSubmit, onCancel }) {
  const c = editing || { name: "", events: ["*"], min_severity: "info", quiet_hours: null };
  const q = c.quiet_hours || { start: "", end: "", timezone: LOCAL_ZONE };
  const nameRef = useRef(null);
  // Edit pressed in a row further up: bring the form (its first field) to the user.
  useEffect(() => {
    if (editing) nameRef.current?.focus();
  }, []);
  const submit = (event) => {
    event.preventDefault();
    const formEl = event.currentTarget;
    onSubmit(channelBody(new FormData(formEl), editing), () => formEl.reset());
  };
  const title = editing ? `Change “${editing.name}”` : "Add a channel";
  return html`<form class="card form" onSubmit=${submit} aria-labelledby="channel-form">
      <h2 id="channel-form">${title}</h2>
      <div class="row">
        <div class="field"><label for="ch-name">Name</label><input id="ch-name" ref=${nameRef} name="name" required maxlength="100" defaultValue=${c.name} placeholder="e.g. Night shift phone" /></div>
        <div class="field grow"><label for="ch-url">Apprise URL</label><input id="ch-url" name="url" required=${!editing} maxlength="2048" autocomplete="off" spellcheck="false"
          placeholder=${editing ? "empty: keep the stored URL" : "ntfy://farm-alerts"} /></div>
        <div class="field grow"><label for="ch-events">Events (comma-separated; * for all)</label><input id="ch-events" name="events" required defaultValue=${c.events.join(", ")} /></div>
        <div class="field"><label for="ch-sev">Minimum severity</label><select id="ch-sev" name="min_severity">${SEVERITIES.map((s) => html`<option value=${s} defaultSelected=${s === c.min_severity}>${s}</option>`)}</select></div>
      </div>
      <fieldset class="row quiet">
        <legend>Quiet hours (optional: held until the window ends)</legend>
        <div class="field"><label for="ch-qstart">From</label><input id="ch-qstart" name="quiet_start" type="time" defaultValue=${q.start} /></div>
        <div class="field"><label for="ch-qend">Until</label><input id="ch-qend" name="quiet_end" type="time" defaultValue=${q.end} /></div>
        <div class="field tz"><label for="ch-qtz">Time zone</label><input id="ch-qtz" name="quiet_tz" list="ch-zones" defaultValue=${q.timezone} maxlength="64" /></div>
        <datalist id="ch-zones">${ZONES.map((z) => html`<option value=${z} />`)}</datalist>
      </fieldset>
      <div class="buttons">
        <button type="submit" class="primary">${editing ? "Save channel" : "Add channel"}</button>
        ${editing && html`<button type="button" onClick=${onCancel}>Cancel</button>`}
      </div>
    </form>`;
}

export function ChannelsPage() {
  const channels = useLoad(() => api("GET", BASE), []);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const [showing, setShowing] = useState(null);
  const [editing, setEditing] = useState(null);
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
  const save = (body, reset) =>
    act(async () => {
      if (editing) await api("PUT", path(editing), body);
      else await api("POST", BASE, body);
      reset();
      setEditing(null);
    }, editing ? `Channel “${body.name}” saved.` : `Channel “${body.name}” added.`);
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
          <button type="button" onClick=${() => setEditing(c)}>Edit</button>
          <button type="button" onClick=${() => act(() => api("PUT", path(c), { enabled: !c.enabled }))}>${c.enabled ? "Disable" : "Enable"}</button>
          <button type="button" class="danger" onClick=${() => confirm(`Delete the channel “${c.name}” and its messages?`) && act(() => api("DELETE", path(c)).then(() => {
            if (showing?.id === c.id) setShowing(null);
            if (editing?.id === c.id) setEditing(null);
          }), "Channel deleted.")}>Delete</button>
        </td></tr>`)}</tbody></table></div>`)}
    <${ChannelForm} key=${editing ? editing.id : "new"} editing=${editing} onSubmit=${save} onCancel=${() => setEditing(null)} />`;
}
