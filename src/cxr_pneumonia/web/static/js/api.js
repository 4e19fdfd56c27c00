// The REST API under api/v1, and the credential that calls it.
// The credential lives in this module's memory only: never localStorage, sessionStorage or a cookie,
// so closing or reloading the tab signs out.

const BASE = new URL("api/v1/", document.baseURI);

let credential = null; // {kind: "token", token, refresh} | {kind: "key", key}
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, body, fallback) {
    const detail = body && typeof body.detail === "string" ? body.detail : fallback;
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.error) || (status === 0 ? "network" : `http_${status}`);
    this.detail = detail || "";
    this.reason = (body && body.reason) || null;
    this.requestId = (body && body.request_id) || null;
    this.retryAfter = null;
  }
}

export function onUnauthorized(listener) {
  listeners.add(listener);
}

export function setToken(token, refresh = null) {
  credential = { kind: "token", token, refresh };
}

/** Sign out on the server too: the refresh token's family, and the access token with it, are revoked. */
export async function revokeSession() {
  const refresh = credential && credential.kind === "token" ? credential.refresh : null;
  if (!refresh) return;
  try {
    await request("auth/logout", { method: "POST", json: { refresh_token: refresh } });
  } catch {
    // Already expired or revoked: nothing is left to end.
  }
}

export function setApiKey(key) {
  credential = { kind: "key", key };
}

export function clearCredential() {
  credential = null;
}

export function hasCredential() {
  return credential !== null;
}

function authHeaders() {
  if (!credential) return {};
  if (credential.kind === "key") return { "X-API-Key": credential.key };
  return { Authorization: `Bearer ${credential.token}` };
}

export function url(path, query) {
  // Paths the API returns are absolute ("/api/v1/..."); ours are relative to api/v1/.
  const target = path.startsWith("/") ? new URL(path, document.baseURI) : new URL(path, BASE);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(name, String(value));
  }
  return target;
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null; // a proxy's HTML page or an empty body: the status alone must do
  }
  const error = new ApiError(response.status, body, response.statusText);
  const retry = response.headers.get("Retry-After");
  if (retry) error.retryAfter = Number(retry);
  if (!error.requestId) error.requestId = response.headers.get("X-Request-ID");
  return error;
}

function notifyUnauthorized(error, path) {
  // A 401 on anything but the login means the session ended (expired token, revoked key, disabled user).
  if (error.status === 401 && !path.startsWith("auth/token") && credential) {
    for (const listener of listeners) listener(error);
  }
}

/** A JSON request; returns the parsed body (or null for 204). Throws ApiError. */
export async function request(path, { method = "GET", query, json, form, multipart, signal } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = new URLSearchParams(form);
  } else if (multipart !== undefined) {
    body = multipart;
  }
  let response;
  try {
    response = await fetch(url(path, query), { method, headers, body, signal, credentials: "omit" });
  } catch (cause) {
    if (cause && cause.name === "AbortError") throw cause;
    throw new ApiError(0, null, "network");
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    notifyUnauthorized(error, path);
    throw error;
  }
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** A binary resource (PNG, CSV) as a Blob, with the credential. */
export async function fetchBlob(path, query) {
  let response;
  try {
    response = await fetch(url(path, query), { headers: authHeaders(), credentials: "omit" });
  } catch {
    throw new ApiError(0, null, "network");
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    notifyUnauthorized(error, path);
    throw error;
  }
  return response.blob();
}

/**
 * Upload one file with progress (fetch cannot report upload progress; XMLHttpRequest can).
 * onProgress(fraction in [0, 1]) while sending; resolves with the JSON body, rejects with ApiError.
 */
export function upload(path, field, file, { query, onProgress, onSent } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url(path, query));
    xhr.responseType = "text";
    xhr.setRequestHeader("Accept", "application/json");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    });
    xhr.upload.addEventListener("load", () => onSent && onSent());
    xhr.addEventListener("error", () => reject(new ApiError(0, null, "network")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, null, "aborted")));
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body);
        return;
      }
      const error = new ApiError(xhr.status, body, xhr.statusText);
      const retry = xhr.getResponseHeader("Retry-After");
      if (retry) error.retryAfter = Number(retry);
      if (!error.requestId) error.requestId = xhr.getResponseHeader("X-Request-ID");
      notifyUnauthorized(error, path);
      reject(error);
    });
    const data = new FormData();
    data.append(field, file, file.name);
    xhr.send(data);
  });
}
