// Dialogs that change an endpoint: its config (a form, or YAML/JSON text), tags, rate limits.
// The server validates; its message goes beside the field it names.
import { useEffect, useRef, useState } from "../vendor/preact-htm.js";
import yaml from "../vendor/js-yaml.js";
import { endpointPath, put } from "./api.js";
import { ErrorBox, html, WORKLOAD_SIZES, WORKLOAD_TYPES } from "./ui.js";

const ENTITY_INPUTS = [
  "name", "entity_name", "entity_version", "external_model", "workload_size", "workload_type",
  "scale_to_zero_enabled", "scale_to_zero_idle_seconds", "min_provisioned_concurrency",
  "max_provisioned_concurrency", "min_provisioned_throughput", "max_provisioned_throughput",
  "provisioned_model_units", "burst_scaling_enabled", "environment_vars", "instance_profile_arn",
  "max_batch_size", "max_batch_wait_ms",
];

/** The config as PUT takes it: GET's answer without what the server fills in. */
export function editableConfig(config = {}) {
  const entities = (config.served_entities ?? []).map((e) =>
    Object.fromEntries(ENTITY_INPUTS.filter((k) => e[k] !== undefined).map((k) => [k, e[k]])),
  );
  const out = { served_entities: entities };
  if (config.traffic_config) {
    out.traffic_config = {
      routes: config.traffic_config.routes.map((r) => ({
        served_entity_name: r.served_entity_name ?? r.served_model_name,
        traffic_percentage: r.traffic_percentage,
      })),
    };
  }
  if (config.auto_capture_config) out.auto_capture_config = config.auto_capture_config;
  return out;
}

function FieldError({ error, field }) {
  if (!error || error.field !== field) return null;
  return html`<span class="field-error" role="alert" id=${`err-${field}`}>${error.message}</span>`;
}

function EntityFields({ entity, index, onChange, error }) {
  const field = (key) => `served_entities.${index}.${key}`;
  const set = (key, value) => onChange({ ...entity, [key]: value });
  const invalid = (key) => (error?.field === field(key) ? "true" : undefined);
  if (entity.external_model) {
    return html`<fieldset><legend>${entity.name}</legend>
      <p class="muted">An external model (${entity.external_model.provider}): edit it as YAML or JSON.</p></fieldset>`;
  }
  return html`<fieldset>
    <legend>${entity.name ?? `Served entity ${index + 1}`}</legend>
    <label>Model <input name=${field("entity_name")} value=${entity.entity_name ?? ""}
      aria-invalid=${invalid("entity_name")} onInput=${(e) => set("entity_name", e.target.value)} /></label>
    <${FieldError} error=${error} field=${field("entity_name")} />
    <label>Version <input name=${field("entity_version")} value=${entity.entity_version ?? ""}
      aria-invalid=${invalid("entity_version")} onInput=${(e) => set("entity_version", e.target.value)} /></label>
    <${FieldError} error=${error} field=${field("entity_version")} />
    <label>Workload size <select name=${field("workload_size")} value=${entity.workload_size ?? ""}
      aria-invalid=${invalid("workload_size")} onChange=${(e) => set("workload_size", e.target.value || undefined)}>
      <option value="">(provisioned concurrency or throughput)</option>
      ${WORKLOAD_SIZES.map((s) => html`<option value=${s}>${s}</option>`)}
    </select></label>
    <${FieldError} error=${error} field=${field("workload_size")} />
    <label>Workload type <select name=${field("workload_type")} value=${entity.workload_type ?? "CPU"}
      aria-invalid=${invalid("workload_type")} onChange=${(e) => set("workload_type", e.target.value)}>
      ${WORKLOAD_TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
    </select></label>
    <${FieldError} error=${error} field=${field("workload_type")} />
    <label class="check"><input type="checkbox" name=${field("scale_to_zero_enabled")}
      checked=${!!entity.scale_to_zero_enabled} onChange=${(e) => set("scale_to_zero_enabled", e.target.checked)} />
      Scale to zero when idle</label>
  </fieldset>`;
}

function ConfigForm({ draft, setDraft, error }) {
  const entities = draft.served_entities ?? [];
  const routes = draft.traffic_config?.routes ?? [];
  const setEntity = (i, entity) =>
    setDraft({ ...draft, served_entities: entities.map((e, j) => (i === j ? entity : e)) });
  const setShare = (i, value) =>
    setDraft({
      ...draft,
      traffic_config: { routes: routes.map((r, j) => (i === j ? { ...r, traffic_percentage: Number(value) } : r)) },
    });
  return html`<div class="config-form">
    ${entities.map((e, i) => html`<${EntityFields} entity=${e} index=${i} error=${error} onChange=${(v) => setEntity(i, v)} />`)}
    ${routes.length > 0 &&
    html`<fieldset><legend>Traffic</legend>
      ${routes.map(
        (r, i) => html`<label>${r.served_entity_name} %
          <input type="number" min="0" max="100" name=${`traffic_config.routes.${i}.traffic_percentage`}
            value=${r.traffic_percentage} onInput=${(e) => setShare(i, e.target.value)} /></label>`,
      )}
      <${FieldError} error=${error} field="traffic_config" />
    </fieldset>`}
  </div>`;
}

function Dialog({ title, children, onClose, wide }) {
  const ref = useRef();
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  return html`<dialog ref=${ref} onClose=${onClose} class=${wide ? "wide" : ""} aria-label=${title}>
    <h2>${title}</h2>${children}</dialog>`;
}

export function ConfigEditor({ endpoint, onClose }) {
  const [draft, setDraft] = useState(() => editableConfig(endpoint.config ?? endpoint.pending_config));
  const [mode, setMode] = useState("form");
  const [text, setText] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const toText = (value, as) => (as === "json" ? JSON.stringify(value, null, 2) : yaml.dump(value, { noRefs: true }));
  const parse = () => (mode === "form" ? draft : mode === "json" ? JSON.parse(text) : yaml.load(text));
  const switchTo = (next) => {
    try {
      const value = parse();
      setError(null);
      if (next === "form") setDraft(value);
      else setText(toText(value, next));
      setMode(next);
    } catch (e) {
      setError({ code: "INVALID_TEXT", message: `Fix the ${mode.toUpperCase()} first: ${e.message}` });
    }
  };
  const save = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      let body;
      try {
        body = parse();
      } catch (e) {
        throw { code: "INVALID_TEXT", message: `The ${mode.toUpperCase()} does not parse: ${e.message}` };
      }
      await put(`${endpointPath(endpoint.name)}/config`, body);
      onClose();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  const fieldShown = mode === "form" && error?.field && document.querySelector(`[name="${error.field}"]`);
  return html`<${Dialog} title=${`Edit the config of ${endpoint.name}`} onClose=${onClose} wide>
    <form onSubmit=${save} aria-label="Endpoint config">
      <div class="tabs" role="tablist" aria-label="Editor">
        ${[["form", "Form"], ["yaml", "YAML"], ["json", "JSON"]].map(
          ([id, label]) => html`<button type="button" role="tab" aria-selected=${mode === id}
            class=${mode === id ? "tab active" : "tab"} onClick=${() => switchTo(id)}>${label}</button>`,
        )}
      </div>
      ${mode === "form"
        ? html`<${ConfigForm} draft=${draft} setDraft=${setDraft} error=${error} />`
        : html`<label for="config-text" class="visually-hidden">Config as ${mode}</label>
          <textarea id="config-text" class="code" rows="20" spellcheck="false" value=${text}
            onInput=${(e) => setText(e.target.value)}></textarea>`}
      ${!fieldShown && html`<${ErrorBox} error=${error} />`}
      <p class="muted small">The new replicas start beside the old ones; traffic moves once they are ready.</p>
      <div class="actions">
        <button type="button" onClick=${onClose}>Close</button>
        <button class="primary" type="submit" disabled=${busy}>Update</button>
      </div>
    </form>
  </${Dialog}>`;
}

export function TagsEditor({ endpoint, onSave, onClose }) {
  const [rows, setRows] = useState(() => (endpoint.tags ?? []).map((t) => ({ ...t })));
  const [error, setError] = useState(null);
  const save = async (event) => {
    event.preventDefault();
    const kept = rows.filter((r) => r.key.trim());
    const removed = (endpoint.tags ?? []).map((t) => t.key).filter((k) => !kept.some((r) => r.key === k));
    try {
      await onSave({
        add_tags: kept.map((r) => (r.value ? { key: r.key.trim(), value: r.value } : { key: r.key.trim() })),
        delete_tags: removed,
      });
      onClose();
    } catch (e) {
      setError(e);
    }
  };
  const set = (i, key, value) => setRows(rows.map((r, j) => (i === j ? { ...r, [key]: value } : r)));
  return html`<${Dialog} title=${`Tags of ${endpoint.name}`} onClose=${onClose}>
    <form onSubmit=${save}>
      ${rows.map(
        (r, i) => html`<div class="row">
          <label>Key <input value=${r.key} onInput=${(e) => set(i, "key", e.target.value)} /></label>
          <label>Value <input value=${r.value ?? ""} onInput=${(e) => set(i, "value", e.target.value)} /></label>
          <button type="button" class="link" aria-label=${`Remove tag ${r.key}`}
            onClick=${() => setRows(rows.filter((_, j) => j !== i))}>Remove</button>
        </div>`,
      )}
      <button type="button" onClick=${() => setRows([...rows, { key: "", value: "" }])}>Add a tag</button>
      <${ErrorBox} error=${error} />
      <div class="actions"><button type="button" onClick=${onClose}>Close</button>
        <button class="primary" type="submit">Save tags</button></div>
    </form>
  </${Dialog}>`;
}

export function RateLimitsEditor({ endpoint, onSave, onClose }) {
  const current = endpoint.ai_gateway?.rate_limits ?? endpoint.rate_limits ?? [];
  const [rows, setRows] = useState(() => current.map((r) => ({ ...r })));
  const [error, setError] = useState(null);
  const save = async (event) => {
    event.preventDefault();
    try {
      await onSave({ rate_limits: rows.map((r) => ({ ...r, calls: Number(r.calls) })) });
      onClose();
    } catch (e) {
      setError(e);
    }
  };
  const set = (i, key, value) => setRows(rows.map((r, j) => (i === j ? { ...r, [key]: value } : r)));
  return html`<${Dialog} title=${`Rate limits of ${endpoint.name}`} onClose=${onClose}>
    <form onSubmit=${save}>
      ${rows.map(
        (r, i) => html`<div class="row">
          <label>Calls <input type="number" min="0" value=${r.calls} onInput=${(e) => set(i, "calls", e.target.value)} /></label>
          <label>Per <select value=${r.renewal_period} onChange=${(e) => set(i, "renewal_period", e.target.value)}>
            <option value="minute">minute</option></select></label>
          <label>Key <select value=${r.key} onChange=${(e) => set(i, "key", e.target.value)}>
            <option value="user">user</option><option value="endpoint">endpoint</option></select></label>
          <button type="button" class="link" onClick=${() => setRows(rows.filter((_, j) => j !== i))}>Remove</button>
        </div>`,
      )}
      <button type="button" onClick=${() => setRows([...rows, { calls: 100, renewal_period: "minute", key: "user" }])}>Add a limit</button>
      <${ErrorBox} error=${error} />
      <div class="actions"><button type="button" onClick=${onClose}>Close</button>
        <button class="primary" type="submit">Save limits</button></div>
    </form>
  </${Dialog}>`;
}
