// Start-up, the hash router and the page shell (header, navigation, connection banner).

import { render } from "../vendor/preact.js";
import { useEffect, useRef, useState } from "../vendor/hooks.js";
import { can, logout, onSessionEnd, restore, session } from "./api.js";
import * as live from "./live.js";
import { farm } from "./live.js";
import { LoginPage } from "./pages/login.js";
import { FarmPage } from "./pages/farm.js";
import { PrinterPage } from "./pages/printer.js";
import { NotificationsPage } from "./pages/notifications.js";
import { UsersPage } from "./pages/users.js";
import { FilamentPage } from "./pages/filament.js";
import { HistoryPage } from "./pages/history.js";
import { QueuePage } from "./pages/queue.js";
import { TokensPage, WebhooksPage } from "./pages/integrations.js";
import { ChannelsPage } from "./pages/channels.js";
import { html, Loading } from "./ui.js";

// Each page: hash pattern, title, component, minimum role, shown in the navigation.
const ROUTES = [
  { path: /^\/$/, title: "Farm", nav: "#/", page: FarmPage, role: "viewer" },
  { path: /^\/printers\/([^/]+)$/, title: "Printer", page: PrinterPage, role: "viewer" },
  { path: /^\/queue$/, title: "Queue", nav: "#/queue", page: QueuePage, role: "viewer" },
  { path: /^\/filament$/, title: "Filament", nav: "#/filament", page: FilamentPage, role: "viewer" },
  { path: /^\/history$/, title: "History", nav: "#/history", page: HistoryPage, role: "viewer" },
  { path: /^\/notifications$/, title: "Notifications", nav: "#/notifications", page: NotificationsPage, role: "viewer" },
  { path: /^\/tokens$/, title: "Tokens", nav: "#/tokens", page: TokensPage, role: "viewer" },
  { path: /^\/webhooks$/, title: "Webhooks", nav: "#/webhooks", page: WebhooksPage, role: "admin" },
  { path: /^\/channels$/, title: "Channels", nav: "#/channels", page: ChannelsPage, role: "admin" },
  { path: /^\/users$/, title: "Users", nav: "#/users", page: UsersPage, role: "admin" },
];

function currentPath() {
  const hash = location.hash.replace(/^#/, "");
  return hash.startsWith("/") ? hash : "/";
}

function useHashPath() {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const onHash = () => setPath(currentPath());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  return path;
}

function useTopic(topic, read) {
  const [value, setValue] = useState(read());
  useEffect(() => live.on(topic, () => setValue(read())), []);
  return value;
}

function ConnectionBanner() {
  const conn = useTopic("conn", () => farm.conn);
  const [, tick] = useState(0);
  useEffect(() => {
    if (conn !== "lost") return undefined;
    const t = setInterval(() => tick((n) => n + 1), 500);
    return () => clearInterval(t);
  }, [conn]);
  if (conn !== "lost") return null;
  const wait = Math.max(0, Math.ceil((farm.retryAt - Date.now()) / 1000));
  const when = wait > 0 ? `Reconnecting in ${wait} s…` : "Reconnecting…";
  return html`<div class="banner lost" role="alert">
    ${`Connection to the hub lost. ${when} Values shown may be out of date. `}
    <button type="button" class="link" onClick=${live.reconnectNow}>Retry now</button>
  </div>`;
}

function Header({ path }) {
  const unread = useTopic("unread", () => farm.unread);
  const conn = useTopic("conn", () => farm.conn);
  const links = ROUTES.filter((r) => r.nav && can(r.role));
  return html`<header class="top">
    <a class="skip" href="#main">Skip to content</a>
    <a class="brand" href="#/"><img src="/ui/icon.svg" alt="" width="24" height="24" /> 3DPrintForge</a>
    <nav aria-label="Main">
      <ul>
        ${links.map((r) => html`<li><a href=${r.nav} aria-current=${r.path.test(path) ? "page" : undefined}>
          ${r.title}${r.nav === "#/notifications" && unread > 0 ? html` <span class="count" aria-label=${`${unread} unread`}>${unread}</span>` : ""}
        </a></li>`)}
        <li><a href="/api/docs" target="_blank" rel="noopener">API docs</a></li>
      </ul>
    </nav>
    <div class="who">
      <span class=${`dot ${conn}`} role="img" aria-label=${`live connection ${conn}`} title=${`Live connection: ${conn}`}></span>
      <span>${session.user.username} <span class="muted">(${session.user.role})</span></span>
      <button type="button" onClick=${logout}>Log out</button>
    </div>
  </header>`;
}

function Shell() {
  const path = useHashPath();
  const mainRef = useRef(null);
  let route = ROUTES.find((r) => r.path.test(path));
  const match = route ? path.match(route.path) : null;
  useEffect(() => {
    document.title = `${route ? route.title : "Not found"} · 3DPrintForge`;
    // Move focus to the page on navigation so keyboard and screen-reader users land there.
    if (mainRef.current && document.activeElement && document.activeElement.tagName !== "INPUT") mainRef.current.focus({ preventScroll: true });
  }, [path]);
  let body;
  if (!route) body = html`<h1>Not found</h1><p>No page at <code>${path}</code>. <a href="#/">Back to the farm</a>.</p>`;
  else if (!can(route.role)) body = html`<h1>${route.title}</h1><p class="problem" role="alert">This page needs the ${route.role} role.</p>`;
  else body = html`<${route.page} params=${match.slice(1)} />`;
  return html`<${Header} path=${path} />
    <${ConnectionBanner} />
    <main id="main" tabindex="-1" ref=${mainRef}>${body}</main>`;
}

function App() {
  const [phase, setPhase] = useState(session.token ? "restoring" : "login");
  const [message, setMessage] = useState(null);
  useEffect(
    () =>
      onSessionEnd((why) => {
        live.stop();
        setMessage(why);
        setPhase("login");
      }),
    [],
  );
  useEffect(() => {
    if (phase !== "restoring") return;
    restore().then(
      () => setPhase("in"),
      () => setPhase("login"),
    );
  }, [phase]);
  useEffect(() => {
    if (phase === "in") live.start();
  }, [phase]);
  if (phase === "restoring") return html`<${Loading} what="Checking your session" />`;
  if (phase === "login")
    return html`<${LoginPage} message=${message} onLoggedIn=${() => {
      setMessage(null);
      setPhase("in");
    }} />`;
  return html`<${Shell} />`;
}

const root = document.getElementById("app");
root.textContent = ""; // the boot message
render(html`<${App} />`, root);
