// The marketer's key and the service's calls: the key from the URL fragment (#key=…, which
// browsers never send to servers) or the key form, kept in sessionStorage (this tab only) and
// sent as X-API-Key; `api()` and the errors every call shares (a refused key shows the form,
// no snapshot says what to run, a service still starting is retried); the page-wide messages.
//
// URLs are relative without a leading slash: the page is served at /v1/dashboard behind
// BentoML and at /dashboard when the FastAPI app runs on its own.

import { $, setState, state } from "./state.js";

const BASE = new URL(location.pathname.replace(/\/dashboard\/?$/, "/"), location.origin);
const KEY_STORE = "journey.apiKey";
const RETRY_MS = 3000;

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let retry = null; // what a service still starting retries (the page's load)

/** What `handleCommonError` runs again when the service answers 503 (still starting). */
export function onRetry(fn) {
  retry = fn;
}

// -- key -----------------------------------------------------------------------------------

function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the key lives in memory for this page only
  }
}

/** The key from the URL fragment (then removed from the address bar) or this tab's storage. */
export function readKey() {
  // Parsed by hand: URLSearchParams would turn a "+" of the key into a space.
  const hash = location.hash.replace(/^#/, "");
  const parts = hash.split("&").filter(Boolean);
  const at = parts.findIndex((p) => p.startsWith("key="));
  if (at >= 0) {
    let key = parts[at].slice(4);
    try {
      key = decodeURIComponent(key);
    } catch {
      // keep it as it is
    }
    key = key.trim();
    parts.splice(at, 1);
    history.replaceState(null, "", location.pathname + location.search + (parts.length ? `#${parts.join("&")}` : ""));
    if (key) {
      storage()?.setItem(KEY_STORE, key);
      return key;
    }
  }
  return storage()?.getItem(KEY_STORE) || state.key;
}

export function rememberKey(key) {
  storage()?.setItem(KEY_STORE, key);
  state.key = key;
}

export function forgetKey() {
  storage()?.removeItem(KEY_STORE);
  state.key = null;
}

export function showKeyForm(message) {
  setState("key");
  $("#content").hidden = true;
  $("#message").hidden = true;
  $("#sign-out").hidden = true;
  $("#snapshot-meta").textContent = "";
  const form = $("#key-form");
  form.hidden = false;
  const err = $("#key-error");
  err.hidden = !message;
  err.textContent = message || "";
  const input = $("#key-input");
  // The input names its error (aria-describedby in the page): a screen reader reads it with
  // the field when focus lands there.
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  input.value = "";
  input.focus();
}

// -- API -----------------------------------------------------------------------------------

export async function api(path, params = []) {
  const url = new URL(path, BASE);
  for (const [k, v] of params) url.searchParams.append(k, v);
  let response;
  try {
    response = await fetch(url, {
      headers: { "X-API-Key": state.key || "", Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    });
  } catch (err) {
    throw new ApiError(0, "network", `The service cannot be reached (${err.message}).`, null);
  }
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    throw new ApiError(response.status, body?.code || `http_${response.status}`,
      body?.message || response.statusText || `HTTP ${response.status}`, body?.field ?? null);
  }
  return response;
}

/** Errors every call shares: a key problem shows the key form, no snapshot says what to run,
 * a service still starting is retried. Returns true when handled. */
export function handleCommonError(err) {
  if (!(err instanceof ApiError)) return false;
  if (err.status === 401 || err.status === 403) {
    forgetKey();
    const hint = err.status === 403 ? " The dashboard needs a marketer or admin key." : "";
    showKeyForm(`The service refused this key: ${err.message}.${hint}`);
    return true;
  }
  if (err.status === 404 && err.code === "no_snapshot") {
    showMessage("no-snapshot", "No scores yet",
      "The service has no score snapshot to show. Score every customer first — run `journey score` "
      + "(with the service stopped), or have an admin call `POST /v1/admin/score` — then reload this page.",
      err.message);
    return true;
  }
  if (err.status === 503) {
    showMessage("starting", "The service is starting", "Models and histories are still loading; "
      + "this page retries in a few seconds.", err.message);
    if (retry) setTimeout(retry, RETRY_MS);
    return true;
  }
  return false;
}

export function showMessage(kind, heading, text, detail) {
  setState(kind === "no-snapshot" ? "no-snapshot" : "error");
  const box = $("#message");
  box.dataset.code = kind;
  const h = document.createElement("strong");
  h.textContent = heading;
  const p = document.createElement("p");
  // `code` spans for back-quoted commands
  String(text).split("`").forEach((part, i) => {
    if (i % 2) {
      const c = document.createElement("code");
      c.textContent = part;
      p.append(c);
    } else {
      p.append(part);
    }
  });
  box.replaceChildren(h, p);
  if (detail) {
    const d = document.createElement("p");
    d.className = "detail";
    d.textContent = `The service said: ${detail}`;
    box.append(d);
  }
  box.hidden = false;
  $("#content").hidden = true;
  $("#key-form").hidden = true;
}

/** Say `text` to a screen reader (a polite live region) without showing it: what a click
 * changed where no visible text says it (a new sort order, a download started). The region
 * is emptied first so that the same words twice are announced twice. */
export function announce(text) {
  const region = $("#announce");
  if (!region) return;
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 40);
}
