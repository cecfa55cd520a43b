// Notifications feed: newest first, paged, unread filter, mark read; new ones arrive over /ws.

import { useEffect, useState } from "../../vendor/hooks.js";
import { api } from "../api.js";
import { farm, on, refreshUnread } from "../live.js";
import { html, Loading, Problem, useLoad, when } from "../ui.js";

const PER_PAGE = 25;

export function Pager({ page, perPage, total, onPage }) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  if (pages <= 1) return null;
  return html`<nav class="pager" aria-label="pages">
    <button type="button" disabled=${page <= 1} onClick=${() => onPage(page - 1)}>‹ Newer</button>
    <span>Page ${page} of ${pages}</span>
    <button type="button" disabled=${page >= pages} onClick=${() => onPage(page + 1)}>Older ›</button>
  </nav>`;
}

export function NotificationsPage() {
  const [page, setPage] = useState(1);
  const [unreadOnly, setUnreadOnly] = useState(false);
  const [error, setError] = useState(null);
  const list = useLoad(
    () => api("GET", `/api/notifications?page=${page}&per_page=${PER_PAGE}${unreadOnly ? "&unread=true" : ""}`),
    [page, unreadOnly],
  );
  // A new notification on the first page shows at once.
  useEffect(() => on("notification", () => page === 1 && list.reload()), [page, unreadOnly]);
  const act = async (call) => {
    setError(null);
    try {
      await call();
      await refreshUnread();
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  const printerName = (id) => (id && farm.printers.get(id)?.name) || id;
  return html`<div class="page-head">
      <h1>Notifications</h1>
      <div class="tools">
        <label class="check"><input type="checkbox" checked=${unreadOnly} onChange=${(e) => { setPage(1); setUnreadOnly(e.currentTarget.checked); }} /> Unread only</label>
        <button type="button" onClick=${() => act(() => api("POST", "/api/notifications/read-all"))}>Mark all read</button>
      </div>
    </div>
    <${Problem} error=${error} />
    ${list.error && html`<${Problem} error=${list.error} onRetry=${list.reload} />`}
    ${list.loading && !list.data && html`<${Loading} what="Loading notifications" />`}
    ${list.data && (list.data.items.length === 0
      ? html`<p class="empty card">${unreadOnly ? "No unread notifications." : "No notifications yet."}</p>`
      : html`<ul class="feed">
          ${list.data.items.map((n) => html`<li class=${`card note sev-${n.severity}${n.read ? " read" : ""}`}>
            <div class="note-head">
              <span class=${`badge sev-${n.severity}`}>${n.severity}</span>
              <strong>${n.title}</strong>
              <span class="muted">${when(n.created_at)}${n.printer_id ? ` · ${printerName(n.printer_id)}` : ""}</span>
            </div>
            <p>${n.message}</p>
            ${!n.read && html`<button type="button" class="link" onClick=${() => act(() => api("POST", `/api/notifications/${encodeURIComponent(n.id)}/read`))}>Mark read</button>`}
          </li>`)}
        </ul>
        <${Pager} page=${page} perPage=${PER_PAGE} total=${list.data.total} onPage=${setPage} />`)}`;
}
