// The live farm: printer configurations from REST, their state from /ws batch frames.
// Each printer's subscribers are told at most four times a second, and only about their own
// printer, so a message re-renders one card, never the grid.

import { api, endSession, session } from "./api.js";

export const farm = {
  printers: new Map(), // id -> configuration (name, model, protocol, tags, ...)
  status: new Map(), // id -> latest printer.status payload, merged with later partial messages
  loaded: false, // the printer list has been fetched once
  conn: "connecting", // connecting | open | lost
  retryAt: 0, // when the next reconnect attempt starts (ms since epoch), while lost
  unread: 0, // unread notifications
  messages: 0, // messages received over /ws (batch frames count their inner messages)
  expiresAt: null, // the token's expiry from hello
};

const printerListeners = new Map(); // id -> Set(fn)
const topicListeners = new Map(); // topic -> Set(fn)
const dirty = new Set();
let flushQueued = false;

function listeners(map, key) {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  return set;
}

/** Call fn() after the printer's state changed (coalesced per frame); returns unsubscribe. */
export function watchPrinter(id, fn) {
  listeners(printerListeners, id).add(fn);
  return () => printerListeners.get(id)?.delete(fn);
}

/** Topics: "printers" (list changed), "conn", "unread", "notification", "lifecycle", "queue". */
export function on(topic, fn) {
  listeners(topicListeners, topic).add(fn);
  return () => topicListeners.get(topic)?.delete(fn);
}

function emit(topic, payload) {
  for (const fn of topicListeners.get(topic) || []) fn(payload);
}

// How often changed printers are redrawn. Printers report at most twice a second, so 4 redraws
// a second lose nothing a person can see, and each costs one layout and paint of the page
// however many cards changed (60 a second would cost fifteen times that on a busy farm).
const FLUSH_MS = 250;

function touch(id) {
  dirty.add(id);
  if (!flushQueued) {
    flushQueued = true;
    // rAF pauses in hidden tabs: the state is kept, and cards catch up when shown again.
    setTimeout(() => requestAnimationFrame(flush), FLUSH_MS);
  }
}

function flush() {
  flushQueued = false;
  const ids = [...dirty];
  dirty.clear();
  for (const id of ids) for (const fn of printerListeners.get(id) || []) fn();
  emit("status", ids);
}

function merge(id, patch) {
  const old = farm.status.get(id) || { printer_id: id, state: "offline", online: false };
  farm.status.set(id, { ...old, ...patch });
  touch(id);
}

function handle(msg) {
  const p = msg.payload;
  switch (msg.type) {
    case "batch":
      for (const inner of p) handle(inner);
      return;
    case "hello":
      farm.expiresAt = p.expires_at;
      setConn("open");
      return;
    case "printer.status":
      farm.messages++;
      farm.status.set(p.printer_id, p);
      if (farm.loaded && !farm.printers.has(p.printer_id)) refreshPrinters();
      touch(p.printer_id);
      return;
    case "print.progress": {
      farm.messages++;
      const old = farm.status.get(p.printer_id);
      const job = { ...(old?.job || {}), file: p.file, progress: p.progress, layer: p.layer,
        total_layers: p.total_layers, remaining_s: p.remaining_s };
      merge(p.printer_id, { job });
      return;
    }
    case "ams.update":
      farm.messages++;
      merge(p.printer_id, { ams: p.units, active_tray: p.active_tray });
      return;
    case "printer.connection":
      farm.messages++;
      merge(p.printer_id, { connection: p.connection, last_seen: p.last_seen, last_error: p.last_error });
      return;
    case "notification":
      farm.messages++;
      if (!p.read) setUnread(farm.unread + 1);
      emit("notification", p);
      return;
    case "print.lifecycle":
      farm.messages++;
      // A print's end changes the printer's `bed_clear` in its configuration.
      if (["finished", "failed", "cancelled"].includes(p.kind)) refreshPrintersSoon();
      emit("lifecycle", p);
      return;
    case "queue.update":
      farm.messages++;
      refreshPrintersSoon();
      emit("queue", p);
      return;
    case "filament.update":
      farm.messages++;
      emit("filament", p);
      return;
    default:
      // subscribed, pong, error, dropped: nothing to draw. A `dropped` only loses events, and
      // the notification count is re-read below.
      if (msg.type === "dropped") refreshUnread();
  }
}

function setConn(state) {
  farm.conn = state;
  emit("conn", state);
}

export function setUnread(n) {
  farm.unread = Math.max(0, n);
  emit("unread", farm.unread);
}

/** Re-read the unread notification count. */
export async function refreshUnread() {
  try {
    const page = await api("GET", "/api/notifications?unread=true&per_page=1");
    setUnread(page.total);
  } catch {
    // Shown again on the next reconnect; the header keeps the last count.
  }
}

let refreshing = null;
let refreshTimer = null;

/** Re-read the printer list once after a burst of events. */
function refreshPrintersSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refreshPrinters().catch(() => {}), 1000);
}

/** Re-read the printer configurations (names, tags...), e.g. after one was added. */
export function refreshPrinters() {
  if (!refreshing) {
    refreshing = api("GET", "/api/printers")
      .then((list) => {
        const items = Array.isArray(list) ? list : list.items;
        const before = farm.printers;
        farm.printers = new Map(items.map((p) => [p.id, p]));
        // Cards re-render on their own printer's changes only: tell those whose settings changed.
        for (const p of items) if (JSON.stringify(before.get(p.id)) !== JSON.stringify(p)) touch(p.id);
        for (const id of [...farm.status.keys()]) if (!farm.printers.has(id)) farm.status.delete(id);
        farm.loaded = true;
        emit("printers", farm.printers);
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

// --- the socket ---------------------------------------------------------------------------

let socket = null;
let attempt = 0;
let timer = null;
let running = false;

/** Open /ws for the current session; reconnects by itself until stop(). */
export function start() {
  if (running) return;
  running = true;
  attempt = 0;
  open();
  refreshUnread();
}

/** Close the socket and forget the farm (at logout). */
export function stop() {
  running = false;
  clearTimeout(timer);
  if (socket) socket.close(1000);
  socket = null;
  farm.printers = new Map();
  farm.status = new Map();
  farm.loaded = false;
  setConn("connecting");
}

function open() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws`);
  socket = ws;
  setConn("connecting");
  ws.onopen = () => {
    // Browsers cannot set headers on a WebSocket: the token goes in the first message.
    ws.send(JSON.stringify({ type: "auth", token: session.token }));
    ws.send(JSON.stringify({ type: "subscribe", batch: true }));
    // The farm may have changed while the socket was down.
    refreshPrinters().catch(() => {});
    if (attempt > 0) refreshUnread();
  };
  ws.onmessage = (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (msg.type === "hello") attempt = 0;
    handle(msg);
  };
  ws.onclose = (event) => {
    if (socket !== ws || !running) return;
    socket = null;
    if (event.code === 4401 || event.code === 4403) {
      const why = event.reason || "the session is no longer valid";
      endSession(`Your session ended: ${why}. Please log in again.`);
      return;
    }
    // Back-off: 0.5 s, 1 s, 2 s ... up to 15 s, with jitter so a restarted hub is not hit by
    // every dashboard at the same instant.
    const delay = Math.min(15000, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
    attempt++;
    farm.retryAt = Date.now() + delay;
    setConn("lost");
    timer = setTimeout(() => running && open(), delay);
  };
}

/** Try to reconnect now instead of waiting for the back-off. */
export function reconnectNow() {
  if (!running || socket) return;
  clearTimeout(timer);
  open();
}
