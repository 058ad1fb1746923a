// Small pieces every page uses: navigation, loading with refresh, states, times, errors.
import { html, useCallback, useEffect, useRef, useState } from "../vendor/preact-htm.js";

export { html };

export const WORKLOAD_SIZES = ["Small", "Medium", "Large"];
// The workload types the API accepts (WorkloadType in berth/api/schemas/endpoints.py).
export const WORKLOAD_TYPES = [
  "CPU",
  "CPU_MEDIUM",
  "CPU_LARGE",
  "GPU_SMALL",
  "GPU_MEDIUM",
  "GPU_LARGE",
  "GPU_XLARGE",
  "GPU_XLARGE_8",
  "MULTIGPU_MEDIUM",
];

const routeListeners = new Set();

/** Go to `href` inside the console without reloading the page. */
export function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  for (const listener of routeListeners) listener();
}

addEventListener("popstate", () => {
  for (const listener of routeListeners) listener();
});

/** The current location, re-rendering on navigation. */
export function useLocation() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const listener = () => setTick((n) => n + 1);
    routeListeners.add(listener);
    return () => routeListeners.delete(listener);
  }, []);
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

export function Link({ href, children, ...rest }) {
  const onClick = (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${onClick} ...${rest}>${children}</a>`;
}

/**
 * Calls `load()` now, whenever `deps` change, and every `everyMs` if given, while the page
 * is visible. Returns `{data, error, loading, reload}`; a failed refresh keeps the last data.
 */
export function useLoad(load, deps, everyMs) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const alive = useRef(true);
  const reload = useCallback(async () => {
    try {
      const data = await load();
      if (alive.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (alive.current) setState((old) => ({ ...old, error, loading: false }));
    }
  }, deps);
  useEffect(() => {
    alive.current = true;
    setState((old) => ({ ...old, loading: true }));
    reload();
    let timer;
    if (everyMs) {
      timer = setInterval(() => {
        if (document.visibilityState === "visible") reload();
      }, everyMs);
    }
    return () => {
      alive.current = false;
      clearInterval(timer);
    };
  }, [reload, everyMs]);
  return { ...state, reload };
}

/** "ready", "updating" or "failed", from a Databricks endpoint state. */
export function endpointStatus(state = {}) {
  if (state.config_update === "IN_PROGRESS") return "updating";
  if (state.config_update === "UPDATE_FAILED" || state.ready === "NOT_READY") return "failed";
  return "ready";
}

export function StateBadge({ state }) {
  const status = endpointStatus(state);
  const words = { ready: "Ready", updating: "Updating", failed: "Not ready" };
  let label = words[status];
  if (status === "failed" && state?.ready === "READY") label = "Update failed";
  const detail = [state?.ready, state?.config_update].filter(Boolean).join(", ");
  return html`<span class="badge badge-${status}" title=${detail} data-state=${status}>
    ${label}
  </span>`;
}

export function EntityStateBadge({ state }) {
  const deployment = state?.deployment ?? "";
  const status = deployment.endsWith("READY")
    ? "ready"
    : deployment.includes("FAILED") || deployment.includes("ABORTED")
      ? "failed"
      : "updating";
  return html`<span class="badge badge-${status}" title=${state?.deployment_state_message ?? ""}>
    ${deployment.replace("DEPLOYMENT_", "").toLowerCase() || "unknown"}
  </span>`;
}

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

/** A timestamp (epoch ms) as "3 min ago", with the full date on hover. */
export function Time({ ms }) {
  if (!ms) return html`<span class="muted">—</span>`;
  const seconds = Math.round((ms - Date.now()) / 1000);
  const steps = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [30, "day"],
    [12, "month"],
    [Infinity, "year"],
  ];
  let value = seconds;
  let unit = "second";
  for (const [size, name] of steps) {
    unit = name;
    if (Math.abs(value) < size) break;
    value = Math.round(value / size);
  }
  const when = new Date(ms);
  return html`<time datetime=${when.toISOString()} title=${when.toLocaleString()}>
    ${relative.format(value, unit)}
  </time>`;
}

export function ErrorBox({ error, onClose }) {
  if (!error) return null;
  return html`<div class="error" role="alert">
    <strong>${error.code ?? "Error"}</strong> ${error.message}
    ${onClose && html`<button class="link" onClick=${onClose} aria-label="Dismiss">×</button>`}
  </div>`;
}

export function Loading({ what = "" }) {
  return html`<p class="loading" aria-live="polite">Loading ${what}…</p>`;
}

/** A tag list as chips: `key=value`, or `key` alone. */
export function Tags({ tags = [] }) {
  if (!tags.length) return html`<span class="muted">—</span>`;
  return html`<span class="tags">
    ${tags.map((t) => html`<span class="chip">${t.value ? `${t.key}=${t.value}` : t.key}</span>`)}
  </span>`;
}

/** Buttons for tabs whose choice lives in the URL's `tab` parameter. */
export function Tabs({ tabs, current, onSelect }) {
  return html`<div class="tabs" role="tablist">
    ${tabs.map(
      ([id, label]) => html`<button
        role="tab"
        id=${`tab-${id}`}
        aria-selected=${id === current}
        class=${id === current ? "tab active" : "tab"}
        onClick=${() => onSelect(id)}
      >
        ${label}
      </button>`,
    )}
  </div>`;
}

/** A modal dialog asking to confirm; `onConfirm` may be async and may throw an ApiError. */
export function Confirm({ title, children, confirmLabel = "Confirm", danger, onConfirm, onClose }) {
  const ref = useRef();
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const confirm = async () => {
    setBusy(true);
    try {
      await onConfirm();
      onClose();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return html`<dialog ref=${ref} onClose=${onClose} aria-labelledby="confirm-title">
    <h2 id="confirm-title">${title}</h2>
    <div>${children}</div>
    <${ErrorBox} error=${error} />
    <div class="actions">
      <button onClick=${onClose}>Cancel</button>
      <button class=${danger ? "danger" : "primary"} disabled=${busy} onClick=${confirm}>
        ${confirmLabel}
      </button>
    </div>
  </dialog>`;
}

export function fmtNumber(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (Math.abs(value) >= 100 || Number.isInteger(value)) return Math.round(value).toLocaleString();
  return value.toFixed(digits);
}

export function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

/** A plain table from rows and columns of `[header, row => cell]`. */
export function Table({ columns, rows, empty = "Nothing here yet.", label }) {
  if (!rows?.length) return html`<p class="muted">${empty}</p>`;
  return html`<table aria-label=${label}>
    <thead>
      <tr>
        ${columns.map(([header]) => html`<th scope="col">${header}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (row) => html`<tr>
          ${columns.map(([, cell]) => html`<td>${cell(row)}</td>`)}
        </tr>`,
      )}
    </tbody>
  </table>`;
}
