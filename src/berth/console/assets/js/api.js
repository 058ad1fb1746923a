// berth's REST API as the signed-in user: the token stays in this tab's session storage and
// goes with each call as a bearer token, as the CLI and the SDKs send it.
const KEY = "berth.token";

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

/** A failed call, with berth's error shape: `code` (error_code), `message`, HTTP `status`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** The config field a validation message names ("served_entities.0.workload_size: ..."). */
  get field() {
    const match = /^(?:Invalid request: )?([A-Za-z_][\w.]*): /.exec(this.message);
    return match ? match[1] : null;
  }
}

const listeners = new Set();
/** Called with no argument when a call answers 401: the token expired or was revoked. */
export function onSignedOut(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

async function raw(method, path, { body, query, headers = {}, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    for (const item of [].concat(value)) {
      if (item !== undefined && item !== null && item !== "") url.searchParams.append(key, item);
    }
  }
  const init = { method, signal, headers: { ...headers } };
  const current = token.get();
  if (current) init.headers.Authorization = `Bearer ${current}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (!response.ok) {
    let code = `HTTP_${response.status}`;
    let message = response.statusText || "The server answered an error.";
    try {
      const error = await response.json();
      code = error.error_code ?? code;
      message = error.message ?? error.detail ?? message;
    } catch {
      // not JSON: keep the status line
    }
    if (response.status === 401) for (const listener of listeners) listener();
    throw new ApiError(response.status, code, message);
  }
  return response;
}

export async function call(method, path, options) {
  const response = await raw(method, path, options);
  const text = await response.text();
  if (!text) return {};
  return response.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
}

export const get = (path, query, options) => call("GET", path, { ...options, query });
export const post = (path, body) => call("POST", path, { body });
export const put = (path, body) => call("PUT", path, { body });
export const patch = (path, body) => call("PATCH", path, { body });
export const del = (path, query) => call("DELETE", path, { query });

/** POSTs `body` and calls `onEvent` with each server-sent event's parsed data. */
export async function stream(path, body, onEvent, signal) {
  const response = await raw("POST", path, { body, signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (data && data !== "[DONE]") onEvent(JSON.parse(data));
    }
  }
}

export const enc = encodeURIComponent;
export const endpointPath = (name) => `/api/2.0/serving-endpoints/${enc(name)}`;
