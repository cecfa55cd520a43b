// Webhooks (admin): endpoints, their secret shown once, test messages, deliveries, redelivery.
// API tokens (everyone their own, admins all): create (secret shown once), revoke.

import { useState } from "../../vendor/hooks.js";
import { api, can } from "../api.js";
import { html, Loading, Problem, useLoad, when } from "../ui.js";
import { Pager } from "./notifications.js";

/** A secret the hub shows once: visible until dismissed, with a copy button. */
function Secret({ label, value, onDismiss }) {
  const [copied, setCopied] = useState(false);
  return html`<div class="notice secret" role="status">
    <p><strong>${label}</strong> It is shown only now: store it somewhere safe.</p>
    <code class="secret-value">${value}</code>
    <div class="buttons">
      <button type="button" onClick=${() => navigator.clipboard?.writeText(value).then(() => setCopied(true), () => {})}>${copied ? "Copied" : "Copy"}</button>
      <button type="button" onClick=${onDismiss}>Done</button>
    </div>
  </div>`;
}

/**
 * The deliveries of a webhook or a channel (`base` is its API path), with "send again".
 * Channels go through apprise, which reports no HTTP status: they leave out that column.
 */
export function Deliveries({ base, title, onClose, httpStatus = true }) {
  const [page, setPage] = useState(1);
  const [error, setError] = useState(null);
  const list = useLoad(() => api("GET", `${base}/deliveries?page=${page}&per_page=20`), [base, page]);
  const redeliver = async (d) => {
    setError(null);
    try {
      await api("POST", `${base}/deliveries/${encodeURIComponent(d.id)}/redeliver`);
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  return html`<section class="card deliveries" aria-labelledby="deliveries-title">
    <div class="page-head"><h2 id="deliveries-title">Deliveries to ${title}</h2>
      <div class="buttons"><button type="button" onClick=${list.reload}>Refresh</button><button type="button" onClick=${onClose}>Close</button></div></div>
    <${Problem} error=${error || list.error} />
    ${list.loading && !list.data && html`<${Loading} what="Loading deliveries" />`}
    ${list.data && (list.data.items.length === 0 ? html`<p class="muted">No deliveries yet.</p>` : html`<div class="table-wrap"><table>
      <thead><tr><th scope="col">Created</th><th scope="col">Event</th><th scope="col">State</th><th scope="col">Attempts</th>${httpStatus && html`<th scope="col">Last status</th>`}<th scope="col">Last error</th><th scope="col">Next attempt</th><th scope="col"><span class="sr">Actions</span></th></tr></thead>
      <tbody>${list.data.items.map((d) => html`<tr>
        <td>${when(d.created_at)}</td><td><code>${d.event_type}</code></td>
        <td><span class=${`badge ${d.state === "delivered" ? "s-finished" : d.state === "failed" ? "s-failed" : "s-preparing"}`}>${d.state}</span></td>
        <td class="num">${d.attempts}</td>${httpStatus && html`<td class="num">${d.last_status ?? "–"}</td>`}<td>${d.last_error || ""}</td><td>${when(d.next_attempt_at)}</td>
        <td><button type="button" onClick=${() => redeliver(d)}>Send again</button></td></tr>`)}</tbody></table></div>
      <${Pager} page=${page} perPage=${20} total=${list.data.total} onPage=${setPage} />`)}
  </section>`;
}

export function WebhooksPage() {
  const hooks = useLoad(() => api("GET", "/api/webhooks?per_page=200"), []);
  const [error, setError] = useState(null);
  const [secret, setSecret] = useState(null);
  const [done, setDone] = useState(null);
  const [showing, setShowing] = useState(null);
  const act = async (call, message) => {
    setError(null);
    setDone(null);
    try {
      const result = await call();
      if (result?.secret) setSecret({ label: `Signing secret for ${result.url}.`, value: result.secret });
      if (message) setDone(message);
      hooks.reload();
    } catch (err) {
      setError(err);
    }
  };
  const create = (event) => {
    event.preventDefault();
    const formEl = event.currentTarget;
    const form = new FormData(formEl);
    const events = String(form.get("events")).split(",").map((e) => e.trim()).filter(Boolean);
    act(async () => {
      const made = await api("POST", "/api/webhooks", { url: String(form.get("url")).trim(), events, description: String(form.get("description") || "") });
      formEl.reset();
      return made;
    }, "Webhook added.");
  };
  return html`<h1>Webhooks</h1>
    <p class="muted">Signed HTTP callbacks for farm events (see the event list in the <a href="/api/docs">API docs</a>).</p>
    ${secret && html`<${Secret} label=${secret.label} value=${secret.value} onDismiss=${() => setSecret(null)} />`}
    ${done && html`<p class="ok" role="status">${done}</p>`}
    <${Problem} error=${error} />
    <${Problem} error=${hooks.error} onRetry=${hooks.reload} />
    ${hooks.loading && !hooks.data && html`<${Loading} what="Loading webhooks" />`}
    ${showing && html`<${Deliveries} base=${`/api/webhooks/${encodeURIComponent(showing.id)}`} title=${showing.url} onClose=${() => setShowing(null)} />`}
    ${hooks.data && (hooks.data.items.length === 0 ? html`<p class="empty card">No webhooks yet.</p>` : html`<div class="table-wrap"><table>
      <thead><tr><th scope="col">URL</th><th scope="col">Events</th><th scope="col">State</th><th scope="col">Description</th><th scope="col"><span class="sr">Actions</span></th></tr></thead>
      <tbody>${hooks.data.items.map((h) => html`<tr data-webhook=${h.id}>
        <th scope="row" class="file-cell">${h.url}</th><td>${h.events.join(", ")}</td>
        <td>${h.enabled ? html`<span class="badge s-finished">enabled</span>` : html`<span class="badge s-failed">disabled</span>`}${h.disabled_reason ? html`<div class="muted">${h.disabled_reason}</div>` : ""}</td>
        <td>${h.description}</td>
        <td class="actions">
          <button type="button" onClick=${() => act(() => api("POST", `/api/webhooks/${encodeURIComponent(h.id)}/test`), "Test message queued.")}>Test</button>
          <button type="button" onClick=${() => setShowing(h)}>Deliveries</button>
          <button type="button" onClick=${() => act(() => api("PUT", `/api/webhooks/${encodeURIComponent(h.id)}`, { enabled: !h.enabled }))}>${h.enabled ? "Disable" : "Enable"}</button>
          <button type="button" onClick=${() => act(() => api("PUT", `/api/webhooks/${encodeURIComponent(h.id)}`, { rotate_secret: true }))}>New secret</button>
          <button type="button" class="danger" onClick=${() => confirm(`Delete the webhook to ${h.url}?`) && act(() => api("DELETE", `/api/webhooks/${encodeURIComponent(h.id)}`), "Webhook deleted.")}>Delete</button>
        </td></tr>`)}</tbody></table></div>`)}
    <form class="card form" onSubmit=${create} aria-labelledby="add-hook">
      <h2 id="add-hook">Add a webhook</h2>
      <div class="row">
        <div class="field grow"><label for="wh-url">URL</label><input id="wh-url" name="url" type="url" required placeholder="https://example.com/hooks/printforge" /></div>
        <div class="field grow"><label for="wh-events">Events (comma-separated; * for all)</label><input id="wh-events" name="events" required defaultValue="print.*" /></div>
        <div class="field grow"><label for="wh-desc">Description</label><input id="wh-desc" name="description" maxlength="500" /></div>
        <button type="submit" class="primary">Add webhook</button>
      </div>
    </form>`;
}

export function TokensPage() {
  const tokens = useLoad(() => api("GET", "/api/tokens?per_page=200"), []);
  const [error, setError] = useState(null);
  const [secret, setSecret] = useState(null);
  const create = async (event) => {
    event.preventDefault();
    const formEl = event.currentTarget;
    const form = new FormData(formEl);
    const body = { name: String(form.get("name")).trim(), role: String(form.get("role")) };
    const expires = String(form.get("expires") || "");
    if (expires) body.expires_at = new Date(`${expires}T00:00:00`).toISOString();
    setError(null);
    try {
      const made = await api("POST", "/api/tokens", body);
      setSecret({ label: `Token “${made.name}” (${made.role}).`, value: made.token });
      formEl.reset();
      tokens.reload();
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async (t) => {
    if (!confirm(`Revoke the token “${t.name}”? Anything using it stops working at once.`)) return;
    setError(null);
    try {
      await api("DELETE", `/api/tokens/${encodeURIComponent(t.id)}`);
      tokens.reload();
    } catch (err) {
      setError(err);
    }
  };
  const roles = ["viewer", "operator", "admin"].filter((r) => can(r));
  return html`<h1>API tokens</h1>
    <p class="muted">Long-lived tokens for scripts and automations, sent as <code>Authorization: Bearer …</code>.</p>
    ${secret && html`<${Secret} label=${secret.label} value=${secret.value} onDismiss=${() => setSecret(null)} />`}
    <${Problem} error=${error} />
    <${Problem} error=${tokens.error} onRetry=${tokens.reload} />
    ${tokens.loading && !tokens.data && html`<${Loading} what="Loading tokens" />`}
    ${tokens.data && (tokens.data.items.length === 0 ? html`<p class="empty card">No API tokens yet.</p>` : html`<div class="table-wrap"><table>
      <thead><tr><th scope="col">Name</th><th scope="col">User</th><th scope="col">Role</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col"><span class="sr">Actions</span></th></tr></thead>
      <tbody>${tokens.data.items.map((t) => html`<tr>
        <th scope="row">${t.name}</th><td>${t.username}</td><td>${t.role}</td><td>${when(t.created_at)}</td><td>${t.expires_at ? when(t.expires_at) : "never"}</td><td>${when(t.last_used_at)}</td>
        <td><button type="button" class="danger" onClick=${() => revoke(t)}>Revoke</button></td></tr>`)}</tbody></table></div>`)}
    <form class="card form" onSubmit=${create} aria-labelledby="add-token">
      <h2 id="add-token">Create a token</h2>
      <div class="row">
        <div class="field grow"><label for="tk-name">Name</label><input id="tk-name" name="name" required maxlength="100" placeholder="e.g. Home Assistant" /></div>
        <div class="field"><label for="tk-role">Role</label><select id="tk-role" name="role">${roles.map((r) => html`<option value=${r}>${r}</option>`)}</select></div>
        <div class="field"><label for="tk-exp">Expires (optional)</label><input id="tk-exp" name="expires" type="date" /></div>
        <button type="submit" class="primary">Create token</button>
      </div>
    </form>`;
}
