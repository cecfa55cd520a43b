// Users (admin): list, add, change role or password, delete.

import { useState } from "../../vendor/hooks.js";
import { api, session } from "../api.js";
import { html, Loading, Problem, useLoad, when } from "../ui.js";

const ROLES = ["viewer", "operator", "admin"];

function UserRow({ user, onChanged, onError }) {
  const [password, setPassword] = useState("");
  const change = async (body) => {
    try {
      await api("PUT", `/api/users/${encodeURIComponent(user.id)}`, body);
      setPassword("");
      onChanged(`${user.username} updated.`);
    } catch (err) {
      onError(err);
    }
  };
  const remove = async () => {
    if (!confirm(`Delete user ${user.username}?`)) return;
    try {
      await api("DELETE", `/api/users/${encodeURIComponent(user.id)}`);
      onChanged(`${user.username} deleted.`);
    } catch (err) {
      onError(err);
    }
  };
  const me = session.user && session.user.id === user.id;
  return html`<tr>
    <th scope="row">${user.username}${me ? html` <span class="muted">(you)</span>` : ""}</th>
    <td>
      <label class="sr" for=${`role-${user.id}`}>Role of ${user.username}</label>
      <select id=${`role-${user.id}`} value=${user.role} onChange=${(e) => change({ role: e.currentTarget.value })}>
        ${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}
      </select>
    </td>
    <td>${when(user.created_at)}</td>
    <td>
      <form class="inline" onSubmit=${(e) => { e.preventDefault(); change({ password }); }}>
        <label class="sr" for=${`pw-${user.id}`}>New password for ${user.username}</label>
        <input id=${`pw-${user.id}`} type="password" autocomplete="new-password" minlength="8" placeholder="New password" value=${password} onInput=${(e) => setPassword(e.currentTarget.value)} />
        <button type="submit" disabled=${password.length === 0}>Set</button>
      </form>
    </td>
    <td><button type="button" class="danger" onClick=${remove}>Delete</button></td>
  </tr>`;
}

export function UsersPage() {
  const users = useLoad(() => api("GET", "/api/users"), []);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const changed = (msg) => {
    setError(null);
    setDone(msg);
    users.reload();
  };
  const create = async (event) => {
    event.preventDefault();
    const formEl = event.currentTarget;
    const form = new FormData(formEl);
    try {
      await api("POST", "/api/users", { username: form.get("username"), password: form.get("password"), role: form.get("role") });
      formEl.reset();
      changed(`${form.get("username")} added.`);
    } catch (err) {
      setDone(null);
      setError(err);
    }
  };
  return html`<h1>Users</h1>
    <${Problem} error=${error} />
    ${done && html`<p class="ok" role="status">${done}</p>`}
    ${users.error && html`<${Problem} error=${users.error} onRetry=${users.reload} />`}
    ${users.loading && !users.data && html`<${Loading} what="Loading users" />`}
    ${users.data && html`<div class="table-wrap"><table>
      <thead><tr><th scope="col">User</th><th scope="col">Role</th><th scope="col">Created</th><th scope="col">Password</th><th scope="col"><span class="sr">Actions</span></th></tr></thead>
      <tbody>${users.data.items.map((u) => html`<${UserRow} key=${u.id} user=${u} onChanged=${changed} onError=${(e) => { setDone(null); setError(e); }} />`)}</tbody>
    </table></div>`}
    <form class="card form" onSubmit=${create} aria-labelledby="add-user">
      <h2 id="add-user">Add a user</h2>
      <div class="row">
        <div class="field"><label for="nu-name">Username</label><input id="nu-name" name="username" required autocomplete="off" /></div>
        <div class="field"><label for="nu-pass">Password (8+ characters)</label><input id="nu-pass" name="password" type="password" required minlength="8" autocomplete="new-password" /></div>
        <div class="field"><label for="nu-role">Role</label><select id="nu-role" name="role">${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select></div>
        <button type="submit" class="primary">Add user</button>
      </div>
    </form>`;
}
