// Administration: users, groups and service principals (SCIM), tokens, secret scopes, usage
// and the audit log. Each tab asks the API; a 403 shows the API's reason instead of the data,
// so a non-admin still manages their own tokens and sees their own usage.
import uPlot from "../vendor/uplot.js";
import { useEffect, useRef, useState } from "../vendor/preact-htm.js";
import { del, enc, get, post } from "./api.js";
import {
  Confirm,
  ErrorBox,
  fmtNumber,
  html,
  Loading,
  navigate,
  Table,
  Tabs,
  Time,
  useLoad,
  useLocation,
} from "./ui.js";

const SCIM = "/api/2.0/preview/scim/v2";
const DAY_MS = 86_400_000;

/** `/console/admin` with the current query changed by `changes` (empty values dropped). */
function adminHref(query, changes) {
  const next = new URLSearchParams(query);
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined || value === null || value === "") next.delete(key);
    else next.set(key, value);
  }
  const text = next.toString();
  return `/console/admin${text ? `?${text}` : ""}`;
}

/** An error: a 403 as a plain sentence (the API says who may), anything else as an error. */
function Problem({ error }) {
  if (!error) return null;
  if (error.status === 403) return html`<p class="notice" role="status">${error.message}</p>`;
  return html`<${ErrorBox} error=${error} />`;
}

/** A loaded section: its loading line, its problem, or `children(data)`. */
function Loaded({ load, what, children }) {
  if (load.error && !load.data) return html`<${Problem} error=${load.error} />`;
  if (!load.data) return html`<${Loading} what=${what} />`;
  return html`<${ErrorBox} error=${load.error} />${children(load.data)}`;
}

const none = html`<span class="muted">—</span>`;
const chips = (items) =>
  items?.length ? html`<span class="tags">${items.map((i) => html`<span class="chip">${i}</span>`)}</span>` : none;
const activeBadge = (active) =>
  html`<span class="badge badge-${active ? "ready" : "failed"}">${active ? "active" : "inactive"}</span>`;

function Users() {
  const load = useLoad(() => get(`${SCIM}/Users`), []);
  return html`<${Loaded} load=${load} what="users">${(data) => html`<${Table}
    label="Users"
    rows=${data.Resources ?? []}
    columns=${[
      ["User name", (u) => u.userName],
      ["Display name", (u) => u.displayName || none],
      ["Status", (u) => activeBadge(u.active)],
      ["Groups", (u) => chips(u.groups?.map((g) => g.display))],
      ["Entitlements", (u) => chips(u.entitlements?.map((e) => e.value))],
    ]}
  />`}</${Loaded}>`;
}

function ServicePrincipals() {
  const load = useLoad(() => get(`${SCIM}/ServicePrincipals`), []);
  return html`<${Loaded} load=${load} what="service principals">${(data) => html`<${Table}
    label="Service principals"
    empty="No service principal yet."
    rows=${data.Resources ?? []}
    columns=${[
      ["Application id", (s) => html`<code>${s.applicationId}</code>`],
      ["Display name", (s) => s.displayName || none],
      ["Status", (s) => activeBadge(s.active)],
      ["Groups", (s) => chips(s.groups?.map((g) => g.display))],
      ["Entitlements", (s) => chips(s.entitlements?.map((e) => e.value))],
    ]}
  />`}</${Loaded}>`;
}

function Groups() {
  const load = useLoad(() => get(`${SCIM}/Groups`), []);
  return html`<${Loaded} load=${load} what="groups">${(data) => html`<${Table}
    label="Groups"
    rows=${data.Resources ?? []}
    columns=${[
      ["Group", (g) => html`<strong>${g.displayName}</strong>`],
      ["Members", (g) => html`${chips(g.members?.map((m) => m.display))}
        <div class="muted small">${g.members?.length ?? 0} member${g.members?.length === 1 ? "" : "s"}</div>`],
      ["Entitlements", (g) => chips(g.entitlements?.map((e) => e.value))],
    ]}
  />`}</${Loaded}>`;
}

function Expiry({ ms }) {
  if (ms === -1 || ms === undefined) return html`<span class="muted">never</span>`;
  if (ms <= Date.now()) return html`<span class="badge badge-failed" title=${new Date(ms).toLocaleString()}>expired</span>`;
  return html`<${Time} ms=${ms} />`;
}

/** A new token's value, shown this once. */
function NewToken({ value, onDone }) {
  const input = useRef();
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      // No Clipboard API (plain http off localhost is not a secure context) or no permission:
      // copy the selected text the old way.
      input.current.select();
      document.execCommand("copy");
    }
    setCopied(true);
  };
  return html`<section class="token-box" role="alert" aria-labelledby="new-token-title">
    <h3 id="new-token-title">Your new token</h3>
    <p><strong>Copy it now: berth will not show it again.</strong> Anyone holding it acts as you.</p>
    <label for="new-token-value">Token value</label>
    <input id="new-token-value" ref=${input} readonly size=${value.length + 2} value=${value} onFocus=${(e) => e.target.select()} />
    <div class="actions">
      <button class="primary" onClick=${copy}>${copied ? "Copied" : "Copy"}</button>
      <button onClick=${onDone}>Done</button>
    </div>
  </section>`;
}

function CreateToken({ onCreated }) {
  const [comment, setComment] = useState("");
  const [days, setDays] = useState("90");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = { comment: comment.trim() };
      if (days) body.lifetime_seconds = Number(days) * 86_400;
      onCreated(await post("/api/2.0/token/create", body));
      setComment("");
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="filters" onSubmit=${submit} aria-label="Create a token">
    <label>Comment <input name="comment" placeholder="What it is for" value=${comment}
      onInput=${(e) => setComment(e.target.value)} /></label>
    <label>Lifetime <select name="lifetime" value=${days} onChange=${(e) => setDays(e.target.value)}>
      <option value="1">1 day</option>
      <option value="7">7 days</option>
      <option value="30">30 days</option>
      <option value="90">90 days</option>
      <option value="365">1 year</option>
      <option value="">Never expires</option>
    </select></label>
    <button type="submit" class="primary" disabled=${busy}>Create token</button>
    <${ErrorBox} error=${error} />
  </form>`;
}

function Tokens({ isAdmin }) {
  const own = useLoad(() => get("/api/2.0/token/list"), []);
  // Every token (the Token Management API, admins only; a 403 hides the section), its owner
  // named from the SCIM lists: a token carries only the owner's id.
  const all = useLoad(async () => {
    if (!isAdmin) return null;
    const [tokens, users, principals] = await Promise.all([
      get("/api/2.0/token-management/tokens"),
      get(`${SCIM}/Users`),
      get(`${SCIM}/ServicePrincipals`),
    ]);
    const names = new Map(
      [...users.Resources, ...principals.Resources].map((p) => [p.id, p.userName ?? p.applicationId]),
    );
    return tokens.token_infos.map((t) => ({ ...t, owner: names.get(String(t.owner_id)) ?? `principal ${t.owner_id}` }));
  }, [isAdmin]);
  const [created, setCreated] = useState(null);
  const [deleting, setDeleting] = useState(null);
  const reload = () => {
    own.reload();
    all.reload();
  };
  const byCreation = (list) => [...(list ?? [])].sort((a, b) => b.creation_time - a.creation_time);
  const deleteButton = (t, owner) => html`<button class="danger"
    aria-label=${`Delete token ${t.comment || t.token_id}${owner ? ` of ${owner}` : ""}`}
    onClick=${() => setDeleting({ ...t, owner })}>Delete</button>`;
  return html`<section aria-labelledby="own-tokens">
      <h2 id="own-tokens">Your tokens</h2>
      ${created
        ? html`<${NewToken} value=${created.token_value} onDone=${() => setCreated(null)} />`
        : html`<${CreateToken} onCreated=${(answer) => { setCreated(answer); reload(); }} />`}
      <${Loaded} load=${own} what="your tokens">${(data) => html`<${Table}
        label="Your tokens"
        empty="You have no token."
        rows=${byCreation(data.token_infos)}
        columns=${[
          ["Comment", (t) => t.comment || none],
          ["Id", (t) => html`<code class="small">${t.token_id}</code>`],
          ["Created", (t) => html`<${Time} ms=${t.creation_time} />`],
          ["Expires", (t) => html`<${Expiry} ms=${t.expiry_time} />`],
          ["", (t) => deleteButton(t, null)],
        ]}
      />`}</${Loaded}>
    </section>
    ${isAdmin && html`<section aria-labelledby="all-tokens">
      <h2 id="all-tokens">All tokens</h2>
      ${all.error?.status === 403
        ? html`<p class="notice" role="status">${all.error.message}</p>`
        : html`<${Loaded} load=${all} what="all tokens">${(data) => html`<${Table}
            label="All tokens"
            rows=${byCreation(data)}
            columns=${[
              ["Owner", (t) => t.owner],
              ["Comment", (t) => t.comment || none],
              ["Created by", (t) => t.created_by_username ?? none],
              ["Created", (t) => html`<${Time} ms=${t.creation_time} />`],
              ["Expires", (t) => html`<${Expiry} ms=${t.expiry_time} />`],
              ["", (t) => deleteButton(t, t.owner)],
            ]}
          />`}</${Loaded}>`}
    </section>`}
    ${deleting && html`<${Confirm}
      title="Delete this token?"
      confirmLabel="Delete token"
      danger
      onClose=${() => setDeleting(null)}
      onConfirm=${async () => {
        // An admin deletes another's token with the Token Management API.
        if (deleting.owner) await del(`/api/2.0/token-management/tokens/${enc(deleting.token_id)}`);
        else await post("/api/2.0/token/delete", { token_id: deleting.token_id });
        reload();
      }}>
      <p>Token <code>${deleting.token_id}</code>${deleting.comment ? ` (${deleting.comment})` : ""}
        ${deleting.owner ? ` of ${deleting.owner}` : ""} stops working at once. Anything that uses it
        fails, this console too if you signed in with it.</p>
    </${Confirm}>`}`;
}

function ScopeDetail({ scope }) {
  const keys = useLoad(() => get("/api/2.0/secrets/list", { scope }), [scope]);
  const acls = useLoad(() => get("/api/2.0/secrets/acls/list", { scope }), [scope]);
  return html`<section aria-labelledby="scope-title">
    <h2 id="scope-title">Scope ${scope}</h2>
    <h3>Keys</h3>
    <p class="muted small">Names only: no route answers a secret's value.</p>
    <${Loaded} load=${keys} what="keys">${(data) => html`<${Table}
      label=${`Keys of scope ${scope}`}
      empty="No secret in this scope."
      rows=${data.secrets ?? []}
      columns=${[
        ["Key", (s) => html`<code>${s.key}</code>`],
        ["Last update", (s) => html`<${Time} ms=${s.last_updated_timestamp} />`],
      ]}
    />`}</${Loaded}>
    <h3>Access</h3>
    <${Loaded} load=${acls} what="ACLs">${(data) => html`<${Table}
      label=${`ACLs of scope ${scope}`}
      rows=${data.items ?? []}
      columns=${[
        ["Principal", (a) => a.principal],
        ["Permission", (a) => a.permission],
      ]}
    />`}</${Loaded}>
  </section>`;
}

function Secrets({ query }) {
  const scopes = useLoad(() => get("/api/2.0/secrets/scopes/list"), []);
  const selected = query.get("scope");
  const [name, setName] = useState("");
  const [error, setError] = useState(null);
  const [deleting, setDeleting] = useState(null);
  const select = (scope) => navigate(adminHref(query, { scope }), { replace: true });
  const create = async (event) => {
    event.preventDefault();
    setError(null);
    try {
      await post("/api/2.0/secrets/scopes/create", { scope: name.trim() });
      setName("");
      scopes.reload();
      select(name.trim());
    } catch (e) {
      setError(e);
    }
  };
  return html`<section aria-label="Secret scopes">
    <form class="filters" onSubmit=${create} aria-label="Create a secret scope">
      <label>New scope <input name="scope" required placeholder="scope name" value=${name}
        onInput=${(e) => setName(e.target.value)} /></label>
      <button type="submit" class="primary">Create scope</button>
    </form>
    <${ErrorBox} error=${error} onClose=${() => setError(null)} />
    <${Loaded} load=${scopes} what="secret scopes">${(data) => html`<${Table}
      label="Secret scopes"
      empty="No secret scope yet."
      rows=${data.scopes ?? []}
      columns=${[
        ["Scope", (s) => html`<button class="link" aria-pressed=${s.name === selected}
          onClick=${() => select(s.name === selected ? null : s.name)}>${s.name}</button>`],
        ["Backend", (s) => s.backend_type],
        ["", (s) => html`<button class="danger" aria-label=${`Delete scope ${s.name}`}
          onClick=${() => setDeleting(s.name)}>Delete</button>`],
      ]}
    />`}</${Loaded}>
    ${selected && html`<${ScopeDetail} scope=${selected} />`}
    ${deleting && html`<${Confirm}
      title=${`Delete scope ${deleting}?`}
      confirmLabel="Delete scope"
      danger
      onClose=${() => setDeleting(null)}
      onConfirm=${async () => {
        await post("/api/2.0/secrets/scopes/delete", { scope: deleting });
        if (selected === deleting) select(null);
        scopes.reload();
      }}>
      <p>Its secrets and ACLs go with it; endpoints that read them fail at their next start.</p>
    </${Confirm}>`}
  </section>`;
}

/** Requests and errors per day as lines, every day of the period shown (0 when idle). */
function DayChart({ rows, days }) {
  const box = useRef();
  useEffect(() => {
    const byDay = new Map(rows.map((r) => [r.day, r]));
    const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const xs = [];
    const requests = [];
    const errors = [];
    for (let ms = today - (days - 1) * DAY_MS; ms <= today; ms += DAY_MS) {
      const row = byDay.get(new Date(ms).toISOString().slice(0, 10));
      xs.push(ms / 1000);
      requests.push(row?.requests ?? 0);
      errors.push(row?.errors ?? 0);
    }
    const options = {
      width: box.current.clientWidth || 600,
      height: 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
      // Ticks on whole days (every 1, 2, 7 or 14 as the width allows), labelled with UTC dates.
      axes: [
        { incrs: [1, 2, 7, 14].map((n) => n * 86_400), space: 50, values: (u, splits) => splits.map((ts) => new Date(ts * 1000).toISOString().slice(5, 10)) },
        { label: "requests" },
      ],
      series: [
        { label: "Day (UTC)", value: (u, ts) => (ts === null ? "—" : new Date(ts * 1000).toISOString().slice(0, 10)) },
        { label: "Requests", stroke: "#2563eb", width: 2, points: { show: days <= 31 } },
        { label: "Errors", stroke: "#dc2626", width: 2, points: { show: days <= 31 } },
      ],
    };
    const plot = new uPlot(options, [xs, requests, errors], box.current);
    const resize = new ResizeObserver(() => plot.setSize({ width: box.current.clientWidth, height: 240 }));
    resize.observe(box.current);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [rows, days]);
  return html`<div class="chart" ref=${box} role="img" aria-label=${`Requests and errors per day, last ${days} days`}></div>`;
}

/** Usage grouped by `key`, with each row's share of the requests as a bar. */
function UsageTable({ rows, field, label }) {
  const sorted = [...rows].sort((a, b) => b.requests - a.requests);
  const top = Math.max(1, ...sorted.map((r) => r.requests));
  return html`<${Table}
    label=${`Usage by ${label.toLowerCase()}`}
    empty="No request in this period."
    rows=${sorted}
    columns=${[
      [label, (r) => r[field] ?? html`<span class="muted">deleted</span>`],
      ["Requests", (r) => html`<div class="usage-cell">
        <span>${fmtNumber(r.requests)}</span>
        <div class="usage-bar" aria-hidden="true" style=${{ width: `${(100 * r.requests) / top}%` }}></div>
      </div>`],
      ["Errors", (r) => fmtNumber(r.errors)],
      ["Input tokens", (r) => fmtNumber(r.input_tokens)],
      ["Output tokens", (r) => fmtNumber(r.output_tokens)],
      ["Mean latency", (r) => `${fmtNumber(r.mean_latency_ms)} ms`],
    ]}
  />`;
}

function Usage({ query }) {
  const days = Number(query.get("days")) || 7;
  const usage = useLoad(async () => {
    const since = Date.now() - days * DAY_MS;
    const [byDay, byEndpoint, byPrincipal] = await Promise.all(
      ["day", "endpoint", "principal"].map((by) => get("/api/2.0/berth/usage", { by, since })),
    );
    return { day: byDay.usage, endpoint: byEndpoint.usage, principal: byPrincipal.usage };
  }, [days], 60000);
  return html`<section aria-label="Usage">
    <div class="filters">
      <label>Period <select value=${String(days)}
        onChange=${(e) => navigate(adminHref(query, { days: e.target.value === "7" ? null : e.target.value }), { replace: true })}>
        <option value="1">Last day</option>
        <option value="7">Last 7 days</option>
        <option value="30">Last 30 days</option>
        <option value="90">Last 90 days</option>
      </select></label>
      <span class="muted small">Admins see every request; others their own and those to endpoints they manage.</span>
    </div>
    <${Loaded} load=${usage} what="usage">${(data) => html`
      <h2>Requests per day</h2>
      <${DayChart} rows=${data.day} days=${days} />
      <h2>By endpoint</h2>
      <${UsageTable} rows=${data.endpoint} field="endpoint" label="Endpoint" />
      <h2>By principal</h2>
      <${UsageTable} rows=${data.principal} field="principal" label="Principal" />`}</${Loaded}>
  </section>`;
}

// The object types berth's audit log records.
const OBJECT_TYPES = [
  "serving-endpoint",
  "registered-model",
  "secret-scope",
  "token",
  "user",
  "service-principal",
  "group",
];

function Change({ entry }) {
  if (!entry.before && !entry.after) return none;
  return html`<details><summary>before / after</summary>
    <pre>${JSON.stringify({ before: entry.before, after: entry.after }, null, 2)}</pre>
  </details>`;
}

function Audit({ query }) {
  const actor = query.get("actor") ?? "";
  const objectType = query.get("object_type") ?? "";
  const [draft, setDraft] = useState(actor);
  const audit = useLoad(
    () => get("/api/2.0/berth/audit", { limit: 200, actor, object_type: objectType }),
    [actor, objectType],
    15000,
  );
  const go = (changes) => navigate(adminHref(query, changes), { replace: true });
  const submit = (event) => {
    event.preventDefault();
    go({ actor: draft.trim() });
  };
  return html`<section aria-label="Audit log">
    <form class="filters" role="search" onSubmit=${submit}>
      <label>Actor <input name="actor" placeholder="user or application id" value=${draft}
        onInput=${(e) => setDraft(e.target.value)} /></label>
      <button type="submit">Filter</button>
      <label>Object type <select name="object_type" value=${objectType}
        onChange=${(e) => go({ object_type: e.target.value })}>
        <option value="">Any</option>
        ${OBJECT_TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
      </select></label>
    </form>
    <${Loaded} load=${audit} what="the audit log">${(data) => html`
      <p class="muted count" aria-live="polite">${data.entries.length} entr${data.entries.length === 1 ? "y" : "ies"}, newest first
        ${data.entries.length === 200 ? " (the latest 200)" : ""}</p>
      <${Table}
        label="Audit log"
        empty=${actor || objectType ? "No entry matches these filters." : "No entry yet."}
        rows=${data.entries}
        columns=${[
          ["Time", (e) => html`<${Time} ms=${e.timestamp} />`],
          ["Actor", (e) => html`<button class="link" title="Only this actor" onClick=${() => { setDraft(e.actor); go({ actor: e.actor }); }}>${e.actor}</button>`],
          ["Action", (e) => html`<code>${e.action}</code>`],
          ["Object", (e) => html`<span class="muted small">${e.object_type}</span> ${e.object_id}`],
          ["Change", (e) => html`<${Change} entry=${e} />`],
        ]}
      />`}</${Loaded}>
  </section>`;
}

const TABS = [
  ["users", "Users"],
  ["groups", "Groups"],
  ["service-principals", "Service principals"],
  ["tokens", "Tokens"],
  ["secrets", "Secret scopes"],
  ["usage", "Usage"],
  ["audit", "Audit log"],
];

export function AdminPage({ me }) {
  const { query } = useLocation();
  const tab = TABS.some(([id]) => id === query.get("tab")) ? query.get("tab") : me.isAdmin ? "users" : "tokens";
  const select = (id) => navigate(adminHref(new URLSearchParams(), { tab: id }));
  const panels = {
    users: () => html`<${Users} />`,
    groups: () => html`<${Groups} />`,
    "service-principals": () => html`<${ServicePrincipals} />`,
    tokens: () => html`<${Tokens} isAdmin=${me.isAdmin} />`,
    secrets: () => html`<${Secrets} query=${query} />`,
    usage: () => html`<${Usage} query=${query} />`,
    audit: () => html`<${Audit} query=${query} />`,
  };
  return html`<main>
    <div class="page-head"><h1>Administration</h1></div>
    ${!me.isAdmin &&
    html`<p class="notice" role="status">Only admins manage users, groups and service principals and read the
      audit log. You can still manage your own tokens and secret scopes and see the usage you may see.</p>`}
    <${Tabs} tabs=${TABS} current=${tab} onSelect=${select} />
    <div role="tabpanel" aria-labelledby=${`tab-${tab}`}>${panels[tab]()}</div>
  </main>`;
}
