// One endpoint: what it serves and how, its events, charts, logs, captured requests,
// permissions, a query panel or chat playground, and (for managers) the buttons that change it.
import { useState } from "../vendor/preact-htm.js";
import { del, endpointPath, get, patch, post, put } from "./api.js";
import { MetricsCharts } from "./charts.js";
import { ConfigEditor, RateLimitsEditor, TagsEditor } from "./config_editor.js";
import { ChatPlayground, QueryPanel, servesChat } from "./query.js";
import {
  Confirm,
  EntityStateBadge,
  ErrorBox,
  html,
  Link,
  Loading,
  navigate,
  StateBadge,
  Table,
  Tabs,
  Tags,
  Time,
  useLoad,
  useLocation,
} from "./ui.js";

function entityLabel(e) {
  if (e.external_model) return `${e.external_model.provider} · ${e.external_model.name}`;
  return `${e.entity_name} v${e.entity_version}`;
}

function band(e) {
  if (e.min_provisioned_throughput === undefined && e.max_provisioned_throughput === undefined) return null;
  return `${e.min_provisioned_throughput ?? 0}–${e.max_provisioned_throughput ?? 0} tokens/s`;
}

function EntitiesTable({ entities, label }) {
  return html`<${Table}
    label=${label}
    rows=${entities}
    columns=${[
      ["Name", (e) => html`<strong>${e.name}</strong>`],
      ["Serves", (e) =>
        e.external_model || !e.entity_name
          ? entityLabel(e)
          : html`<${Link} href=${`/console/models/${encodeURIComponent(e.entity_name)}`}>${entityLabel(e)}</${Link}>`],
      ["State", (e) => html`<${EntityStateBadge} state=${e.state} />
        <div class="muted small">${e.state?.deployment_state_message ?? ""}</div>`],
      ["Replicas", (e) =>
        e.external_model ? html`<span class="muted">external</span>`
          : html`<span class="replicas" title="ready / desired">${e.current_replicas ?? 0} / ${e.desired_replicas ?? "—"}</span>`],
      ["Size", (e) => [e.workload_type, e.workload_size].filter(Boolean).join(" · ") || "—"],
      ["Provisioned", (e) => band(e) ?? (e.min_provisioned_concurrency !== undefined
        ? `${e.min_provisioned_concurrency}–${e.max_provisioned_concurrency} concurrent` : "—")],
      ["Scale to zero", (e) => (e.scale_to_zero_enabled ? "on" : "off")],
    ]}
  />`;
}

function Traffic({ config }) {
  const routes = config?.traffic_config?.routes ?? [];
  if (!routes.length) return null;
  return html`<div class="traffic" aria-label="Traffic split">
    ${routes.map(
      (r) => html`<div class="traffic-part" style=${`flex: ${Math.max(r.traffic_percentage, 1)}`}
        title=${`${r.served_entity_name ?? r.served_model_name}: ${r.traffic_percentage}%`}>
        ${r.served_entity_name ?? r.served_model_name} ${r.traffic_percentage}%
      </div>`,
    )}
  </div>`;
}

function Pending({ endpoint }) {
  const pending = endpoint.pending_config;
  if (!pending) return null;
  const entities = pending.served_entities ?? [];
  const ready = entities.reduce((n, e) => n + (e.current_replicas ?? 0), 0);
  const wanted = entities.reduce((n, e) => n + Math.max(e.desired_replicas ?? 1, 1), 0);
  return html`<section class="pending" aria-label="Pending config">
    <h2>Update to config version ${pending.config_version ?? ""} in progress</h2>
    <progress max=${wanted} value=${Math.min(ready, wanted)} aria-label="New replicas ready"></progress>
    <span class="muted"> ${ready} of ${wanted} new replicas ready</span>
    <${EntitiesTable} entities=${entities} label="Pending served entities" />
    <${Traffic} config=${pending} />
  </section>`;
}

function Events({ name }) {
  const { data, error } = useLoad(() => get(`${endpointPath(name)}/events`), [name], 3000);
  const events = [...(data?.events ?? [])].reverse();
  return html`<section aria-label="Events">
    <${ErrorBox} error=${error} />
    ${!data ? html`<${Loading} what="events" />` : html`<ol class="timeline">
      ${events.map(
        (e) => html`<li class=${`event event-${(e.type ?? "").toLowerCase()}`}>
          <span class="event-type">${e.type}</span>
          <${Time} ms=${e.timestamp} />
          ${e.config_version ? html`<span class="muted"> · config ${e.config_version}</span>` : ""}
          <div>${e.message}</div>
        </li>`,
      )}
    </ol>`}
  </section>`;
}

function Logs({ endpoint }) {
  const entities = endpoint.config?.served_entities ?? endpoint.pending_config?.served_entities ?? [];
  const [entity, setEntity] = useState(entities[0]?.name ?? "");
  const [kind, setKind] = useState("logs");
  const [follow, setFollow] = useState(true);
  const { data, error } = useLoad(
    () => (entity ? get(`${endpointPath(endpoint.name)}/served-models/${encodeURIComponent(entity)}/${kind}`) : {}),
    [endpoint.name, entity, kind],
    follow ? 2000 : 0,
  );
  const scroll = (el) => {
    if (el && follow) el.scrollTop = el.scrollHeight;
  };
  return html`<section aria-label="Logs">
    <div class="filters">
      <label>Served entity <select value=${entity} onChange=${(e) => setEntity(e.target.value)}>
        ${entities.map((e) => html`<option value=${e.name}>${e.name}</option>`)}
      </select></label>
      <label>Log <select value=${kind} onChange=${(e) => setKind(e.target.value)}>
        <option value="logs">Served model</option>
        <option value="build-logs">Environment build</option>
      </select></label>
      <label><input type="checkbox" checked=${follow} onChange=${(e) => setFollow(e.target.checked)} /> Follow</label>
    </div>
    <${ErrorBox} error=${error} />
    <pre class="logs" ref=${scroll} tabindex="0" aria-label="Log lines">${data?.logs || "No lines yet."}</pre>
  </section>`;
}

function Payloads({ name }) {
  const { data, error } = useLoad(() => get(`${endpointPath(name)}/payloads`, { limit: 50 }), [name], 5000);
  const rows = [...(data?.payloads ?? [])].reverse();
  return html`<section aria-label="Inference table">
    <p class="muted">Requests and responses captured by the endpoint's inference table
      (<code>auto_capture_config</code>), newest first.</p>
    <${ErrorBox} error=${error} />
    <${Table}
      label="Captured requests"
      rows=${rows}
      empty="No captured request: turn on auto_capture_config in the config to capture them."
      columns=${[
        ["Time", (r) => html`<${Time} ms=${r.timestamp_ms} />`],
        ["Entity", (r) => r.served_entity],
        ["Caller", (r) => r.principal],
        ["Status", (r) => r.status_code],
        ["Latency", (r) => `${Math.round(r.latency_ms)} ms`],
        ["Tokens", (r) => (r.input_tokens || r.output_tokens ? `${r.input_tokens} in, ${r.output_tokens} out` : "—")],
        ["Request", (r) => html`<code class="clip">${r.request}</code>`],
        ["Response", (r) => html`<code class="clip">${r.response}</code>`],
      ]}
    />
  </section>`;
}

function Permissions({ endpoint }) {
  const { data, error } = useLoad(
    () => get(`/api/2.0/permissions/serving-endpoints/${encodeURIComponent(endpoint.id)}`),
    [endpoint.id],
  );
  const rows = data?.access_control_list ?? [];
  return html`<section aria-label="Permissions">
    <p>Your level: <strong>${endpoint.permission_level ?? "—"}</strong></p>
    ${error?.status === 403
      ? html`<p class="muted">Only the endpoint's managers see who else may use it.</p>`
      : html`<${ErrorBox} error=${error} />
        <${Table}
          label="Access control list"
          rows=${rows}
          columns=${[
            ["Who", (r) => r.user_name ?? r.group_name ?? r.service_principal_name],
            ["Level", (r) => r.all_permissions?.map((p) => p.permission_level).join(", ")],
            ["Inherited", (r) => (r.all_permissions?.some((p) => p.inherited) ? "yes" : "no")],
          ]}
        />`}
  </section>`;
}

function Overview({ endpoint }) {
  const config = endpoint.config;
  return html`<section aria-label="Overview">
    <${Pending} endpoint=${endpoint} />
    ${config
      ? html`<h2>Served entities <span class="muted small">config version ${config.config_version}</span></h2>
        <${EntitiesTable} entities=${config.served_entities ?? []} label="Served entities" />
        <h2>Traffic</h2>
        <${Traffic} config=${config} />`
      : html`<p class="muted">No config serves yet.</p>`}
    <h2>Details</h2>
    <dl class="details">
      <dt>Creator</dt><dd>${endpoint.creator}</dd>
      <dt>Created</dt><dd><${Time} ms=${endpoint.creation_timestamp} /></dd>
      <dt>Last update</dt><dd><${Time} ms=${endpoint.last_updated_timestamp} /></dd>
      <dt>Task</dt><dd>${endpoint.task ?? "—"}</dd>
      <dt>Tags</dt><dd><${Tags} tags=${endpoint.tags} /></dd>
      <dt>Rate limits</dt><dd>${(endpoint.ai_gateway?.rate_limits ?? endpoint.rate_limits ?? [])
        .map((r) => `${r.calls} calls/${r.renewal_period} per ${r.key}`).join("; ") || "—"}</dd>
      <dt>Query URL</dt><dd><code>${location.origin}/serving-endpoints/${endpoint.name}/invocations</code></dd>
    </dl>
    <h2>Events</h2>
    <${Events} name=${endpoint.name} />
  </section>`;
}

export function EndpointPage({ name }) {
  const { query } = useLocation();
  const [dialog, setDialog] = useState(null);
  const [actionError, setActionError] = useState(null);
  const { data: endpoint, error, reload } = useLoad(() => get(endpointPath(name)), [name], 2000);
  const served = (endpoint?.config?.served_entities ?? [])
    .map((e) => e.external_model?.task ?? `${e.entity_name}/${e.entity_version}`)
    .join(",");
  // Which panel the query tab shows waits for the answer about what is served now.
  const { data: known } = useLoad(
    async () => [served, endpoint ? await servesChat(endpoint) : false],
    [served],
  );
  const chat = known?.[0] === served ? known[1] : undefined;
  if (!endpoint) {
    return html`<main><${ErrorBox} error=${error} />${!error && html`<${Loading} what=${name} />`}</main>`;
  }
  const manager = endpoint.permission_level === "CAN_MANAGE";
  const updating = endpoint.state?.config_update === "IN_PROGRESS";
  const tab = query.get("tab") ?? "overview";
  const tabs = [
    ["overview", "Overview"],
    ["metrics", "Metrics"],
    ["query", chat ? "Playground" : "Query"],
    ["logs", "Logs"],
    ["payloads", "Inference table"],
    ["permissions", "Permissions"],
  ];
  const select = (id) => navigate(`/console/endpoints/${encodeURIComponent(name)}?tab=${id}`, { replace: true });
  const cancel = async () => {
    setActionError(null);
    try {
      await post(`${endpointPath(name)}/config/cancel`);
      reload();
    } catch (e) {
      setActionError(e);
    }
  };
  const close = () => {
    setDialog(null);
    reload();
  };
  return html`<main>
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/console/endpoints">Endpoints</${Link}> /</nav>
    <div class="page-head">
      <h1>${endpoint.name} <${StateBadge} state=${endpoint.state} /></h1>
      ${manager &&
      html`<div class="actions" role="toolbar" aria-label="Endpoint actions">
        <button class="primary" onClick=${() => setDialog("config")} disabled=${updating}>Edit config</button>
        ${updating && html`<button onClick=${cancel}>Cancel update</button>`}
        <button onClick=${() => setDialog("tags")}>Edit tags</button>
        <button onClick=${() => setDialog("limits")}>Rate limits</button>
        <button class="danger" onClick=${() => setDialog("delete")}>Delete</button>
      </div>`}
    </div>
    <${ErrorBox} error=${actionError} onClose=${() => setActionError(null)} />
    <${Tabs} tabs=${tabs} current=${tab} onSelect=${select} />
    <div role="tabpanel" aria-labelledby=${`tab-${tab}`}>
      ${tab === "overview" && html`<${Overview} endpoint=${endpoint} />`}
      ${tab === "metrics" && html`<${MetricsCharts} endpoint=${endpoint} />`}
      ${tab === "query" &&
      (chat === undefined
        ? html`<${Loading} what="the query panel" />`
        : chat
          ? html`<${ChatPlayground} endpoint=${endpoint} />`
          : html`<${QueryPanel} endpoint=${endpoint} />`)}
      ${tab === "logs" && html`<${Logs} endpoint=${endpoint} />`}
      ${tab === "payloads" && html`<${Payloads} name=${name} />`}
      ${tab === "permissions" && html`<${Permissions} endpoint=${endpoint} />`}
    </div>
    ${dialog === "config" && html`<${ConfigEditor} endpoint=${endpoint} onClose=${close} />`}
    ${dialog === "tags" && html`<${TagsEditor} endpoint=${endpoint} onSave=${(body) => patch(`${endpointPath(name)}/tags`, body)} onClose=${close} />`}
    ${dialog === "limits" && html`<${RateLimitsEditor} endpoint=${endpoint} onSave=${(body) => put(`${endpointPath(name)}/rate-limits`, body)} onClose=${close} />`}
    ${dialog === "delete" &&
    html`<${Confirm}
      title=${`Delete ${name}?`}
      confirmLabel="Delete endpoint"
      danger
      onConfirm=${async () => {
        await del(endpointPath(name));
        navigate("/console/endpoints");
      }}
      onClose=${() => setDialog(null)}
    >
      <p>Its replicas stop and its URL stops answering. Its model versions stay registered.</p>
    </${Confirm}>`}
  </main>`;
}
