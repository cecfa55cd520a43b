// REST client: the session token lives in memory and sessionStorage only, and goes out as an
// Authorization header, never in a URL. Every failure becomes an ApiError carrying the
// problem+json body the hub answered with.

const KEY = "printforge.token";

export const session = {
  token: sessionStorage.getItem(KEY),
  user: null, // {id, username, role} from /api/auth/me
};

const endListeners = new Set();

/** Call fn(message) whenever the session ends (logout, expiry, revocation). */
export function onSessionEnd(fn) {
  endListeners.add(fn);
  return () => endListeners.delete(fn);
}

/** Forget the token and send everyone back to the login page with a message. */
export function endSession(message) {
  const had = session.token !== null;
  session.token = null;
  session.user = null;
  sessionStorage.removeItem(KEY);
  if (had) for (const fn of endListeners) fn(message);
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

const ROLES = ["viewer", "operator", "admin"];

/** Whether the logged-in user has `role` or a higher one. */
export function can(role) {
  const mine = session.user ? ROLES.indexOf(session.user.role) : -1;
  return mine >= ROLES.indexOf(role);
}

/** One API call; resolves to the parsed JSON (null for 204), or the Response when raw. */
export async function api(method, path, body, { raw = false } = {}) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, { title: "unreachable", detail: `The hub could not be reached (${err.message}).` });
  }
  if (!res.ok) {
    let problem;
    try {
      problem = await res.json();
    } catch {
      problem = { title: res.statusText, detail: `${res.status} ${res.statusText}` };
    }
    const error = new ApiError(res.status, problem);
    if (res.status === 401 && session.token) endSession(`Your session ended: ${error.message}. Please log in again.`);
    throw error;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

/** Log in: keep the token for this browser tab and load the user behind it. */
export async function login(username, password) {
  const { token } = await api("POST", "/api/auth/login", { username, password });
  session.token = token;
  sessionStorage.setItem(KEY, token);
  session.user = await api("GET", "/api/auth/me");
  return session.user;
}

/** Load the user of a token kept from earlier in this tab (throws when it is no longer valid). */
export async function restore() {
  session.user = await api("GET", "/api/auth/me");
  return session.user;
}

/** Revoke the token on the hub, then end the session here. */
export async function logout() {
  try {
    await api("POST", "/api/auth/logout");
  } catch {
    // The session ends here whatever the hub answered.
  }
  endSession("You are logged out.");
}
