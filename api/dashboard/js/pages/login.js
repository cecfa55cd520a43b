// Login: username and password for a token; a message says why a session ended.

import { useState } from "../../vendor/hooks.js";
import { login } from "../api.js";
import { html, Problem } from "../ui.js";

export function LoginPage({ message, onLoggedIn }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setBusy(true);
    setError(null);
    try {
      await login(String(form.get("username")), String(form.get("password")));
      onLoggedIn();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return html`<main class="login" id="main">
    <form class="card login-card" onSubmit=${submit} aria-labelledby="login-title">
      <h1 id="login-title"><img src="/ui/icon.svg" alt="" width="32" height="32" /> 3DPrintForge</h1>
      ${message && html`<p class="notice" role="status">${message}</p>`}
      <${Problem} error=${error} />
      <label for="login-user">Username</label>
      <input id="login-user" name="username" autocomplete="username" required autofocus />
      <label for="login-pass">Password</label>
      <input id="login-pass" name="password" type="password" autocomplete="current-password" required />
      <button type="submit" class="primary" disabled=${busy}>${busy ? "Logging in…" : "Log in"}</button>
    </form>
  </main>`;
}
