// Registered models, their versions, the model garden, and the form that deploys a version
// to a new serving endpoint.
import { useEffect, useRef, useState } from "../vendor/preact-htm.js";
import { enc, get, post } from "./api.js";
import {
  ErrorBox,
  fmtBytes,
  fmtNumber,
  html,
  Link,
  Loading,
  navigate,
  Table,
  Tags,
  Time,
  useLoad,
  useLocation,
  WORKLOAD_SIZES,
  WORKLOAD_TYPES,
} from "./ui.js";

const modelPath = (name) => `/api/2.0/models/${enc(name)}`;
const modelHref = (name) => `/console/models/${enc(name)}`;
const optimizationPath = (name, version) =>
  `/api/2.0/serving-endpoints/get-model-optimization-info/${enc(name)}/${enc(version)}`;


function VersionStatus({ status }) {
  const kind = status === "READY" ? "ready" : /FAIL/.test(status ?? "") ? "failed" : "updating";
  return html`<span class="badge badge-${kind}">${(status ?? "unknown").toLowerCase()}</span>`;
}

export function ModelList() {
  const { query } = useLocation();
  const search = query.get("q") ?? "";
  // The list has no format: each model's latest version tells it (one call per model).
  const { data, error, loading } = useLoad(async () => {
    const { models = [] } = await get("/api/2.0/models");
    const latest = await Promise.allSettled(
      models.map((m) => (m.latest_version ? get(`${modelPath(m.name)}/versions/${enc(m.latest_version)}`) : null)),
    );
    return models.map((m, i) => ({ ...m, format: latest[i].value?.model_version?.format }));
  }, []);
  const needle = search.trim().toLowerCase();
  const models = (data ?? []).filter(
    (m) => m.name.toLowerCase().includes(needle) || (m.description ?? "").toLowerCase().includes(needle),
  );
  const setSearch = (value) =>
    navigate(value ? `/console/models?q=${enc(value)}` : "/console/models", { replace: true });
  return html`<main>
    <div class="page-head">
      <h1>Registered models</h1>
      <${Link} class="button" href="/console/garden">Model garden</${Link}>
    </div>
    <div class="filters" role="search">
      <label>Search <input type="search" name="q" placeholder="Name or description…" value=${search}
        onInput=${(e) => setSearch(e.target.value)} /></label>
    </div>
    <${ErrorBox} error=${error} />
    ${loading && !data
      ? html`<${Loading} what="models" />`
      : html`<p class="muted count" aria-live="polite">${models.length} model${models.length === 1 ? "" : "s"}</p>
        <${Table}
          label="Registered models"
          empty=${search ? "No model matches this search." : "No model yet: register one with the CLI or from the model garden."}
          rows=${models}
          columns=${[
            ["Name", (m) => html`<${Link} href=${modelHref(m.name)}>${m.name}</${Link}>`],
            ["Latest version", (m) => m.latest_version ?? html`<span class="muted">—</span>`],
            ["Format", (m) => m.format ?? html`<span class="muted">—</span>`],
            ["Description", (m) => m.description || html`<span class="muted">—</span>`],
            ["Tags", (m) => html`<${Tags} tags=${m.tags} />`],
            ["Creator", (m) => m.creator],
            ["Last update", (m) => html`<${Time} ms=${m.last_updated_timestamp} />`],
          ]}
        />`}
  </main>`;
}

/** The version's environment in a line: its summary, and whether it is built and how big. */
function envLine(version, envs) {
  const environment = version.details?.environment;
  if (!environment) return html`<span class="muted">—</span>`;
  const built = environment.hash && envs?.get(environment.hash);
  return html`${environment.summary}
    ${environment.hash &&
    html`<div class="muted small">${built ? `built, ${fmtBytes(built.size_bytes)}` : "not built yet"}</div>`}`;
}

function detailValue(key, value) {
  if (value === null || value === undefined || value === "") return html`<span class="muted">—</span>`;
  if (typeof value === "number") return key.endsWith("bytes") ? fmtBytes(value) : fmtNumber(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.length ? value.join(", ") : html`<span class="muted">—</span>`;
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  // Long values (a chat template, a spec) stay folded.
  if (text.length > 100 || text.includes("\n")) {
    return html`<details><summary>${text.length.toLocaleString()} characters</summary><pre>${text}</pre></details>`;
  }
  return html`<code>${text}</code>`;
}

function Environment({ environment, envs }) {
  if (!environment) return html`<p class="muted">The version records no environment.</p>`;
  const built = environment.hash && envs?.get(environment.hash);
  const spec = environment.spec;
  return html`<dl class="details">
    <dt>Summary</dt><dd>${environment.summary}</dd>
    ${spec && html`<dt>Python</dt><dd>${spec.python}</dd>
      <dt>Requirements</dt><dd>${spec.requirements?.length
        ? html`<ul>${spec.requirements.map((r) => html`<li><code>${r}</code></li>`)}</ul>`
        : html`<span class="muted">none</span>`}</dd>
      ${spec.constraints?.length > 0 &&
      html`<dt>Constraints</dt><dd><ul>${spec.constraints.map((c) => html`<li><code>${c}</code></li>`)}</ul></dd>`}`}
    ${environment.hash && html`<dt>Hash</dt><dd><code title=${environment.hash}>${environment.hash.slice(0, 12)}</code></dd>
      <dt>Build</dt><dd>${built
        ? html`${fmtBytes(built.size_bytes)}, built <${Time} ms=${built.creation_timestamp} />, last used${" "}
            <${Time} ms=${built.last_used_timestamp} />${built.in_use ? "; an endpoint serves from it" : ""}`
        : "not built yet: berth builds it at the first deploy"}</dd>
      ${built?.model_versions?.length > 1 && html`<dt>Used by</dt><dd>${built.model_versions.join(", ")}</dd>`}`}
  </dl>`;
}

function Optimization({ name, version }) {
  const { data, error, loading } = useLoad(() => get(optimizationPath(name, version)), [name, version]);
  if (loading && !data) {
    return html`<${Loading} what="optimization info (an LLM never measured on this host is calibrated first: tens of seconds)" />`;
  }
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data.optimizable) {
    return html`<p class="muted">Not optimizable: provisioned throughput is for open LLMs; size this version by workload size.</p>`;
  }
  const calibration = data.calibration;
  return html`<dl class="details">
    <dt>Optimizable</dt><dd>yes${data.model_type ? `, ${data.model_type}` : ""}</dd>
    <dt>Throughput chunk</dt><dd>${fmtNumber(data.throughput_chunk_size)} tokens/s per replica on this host</dd>
    ${calibration && html`<dt>Calibrated</dt><dd><${Time} ms=${calibration.calibrated_at} /> in ${fmtNumber(calibration.duration_s)} s
      on ${calibration.fingerprint}</dd>
      ${calibration.method?.workload && html`<dt>Method</dt><dd class="small">${calibration.method.workload}</dd>`}`}
  </dl>`;
}

function VersionDetails({ version, envs }) {
  const { environment, ...rest } = version.details ?? {};
  return html`<section aria-labelledby="version-title">
    <h2 id="version-title">Version ${version.version}</h2>
    <dl class="details">
      <dt>Format</dt><dd>${version.format}</dd>
      <dt>Status</dt><dd><${VersionStatus} status=${version.status} /></dd>
      <dt>Source</dt><dd><code>${version.source}</code></dd>
      <dt>Artifact</dt><dd><code>${version.artifact_uri}</code></dd>
      <dt>Description</dt><dd>${version.description || html`<span class="muted">—</span>`}</dd>
      <dt>Created</dt><dd><${Time} ms=${version.creation_timestamp} /> by ${version.creator}</dd>
      ${Object.entries(rest).map(([key, value]) => html`<dt>${key.replaceAll("_", " ")}</dt><dd>${detailValue(key, value)}</dd>`)}
    </dl>
    <h3>Environment</h3>
    <${Environment} environment=${environment} envs=${envs} />
    <h3>Optimization</h3>
    <${Optimization} name=${version.name} version=${version.version} />
  </section>`;
}

export function ModelPage({ name }) {
  const { query } = useLocation();
  const selected = query.get("version");
  const [deploying, setDeploying] = useState(null);
  const model = useLoad(() => get(modelPath(name)), [name]);
  const versions = useLoad(() => get(`${modelPath(name)}/versions`), [name], 10000);
  // The environment cache: whether each version's environment is built, and its size.
  const envs = useLoad(async () => {
    const { environments = [] } = await get("/api/2.0/berth/envs");
    return new Map(environments.map((e) => [e.hash, e]));
  }, [], 30000);
  const rows = [...(versions.data?.model_versions ?? [])].sort((a, b) => Number(b.version) - Number(a.version));
  const current = rows.find((v) => v.version === selected);
  const select = (version) =>
    navigate(version ? `${modelHref(name)}?version=${enc(version)}` : modelHref(name), { replace: true });
  const info = model.data?.model;
  return html`<main>
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/console/models">Models</${Link}> /</nav>
    <div class="page-head"><h1>${name}</h1></div>
    <${ErrorBox} error=${model.error} />
    ${info && html`<dl class="details">
      <dt>Description</dt><dd>${info.description || html`<span class="muted">—</span>`}</dd>
      <dt>Creator</dt><dd>${info.creator}</dd>
      <dt>Created</dt><dd><${Time} ms=${info.creation_timestamp} /></dd>
      <dt>Last update</dt><dd><${Time} ms=${info.last_updated_timestamp} /></dd>
      <dt>Tags</dt><dd><${Tags} tags=${info.tags} /></dd>
    </dl>`}
    <h2>Versions</h2>
    <${ErrorBox} error=${versions.error ?? envs.error} />
    ${versions.loading && !versions.data
      ? html`<${Loading} what="versions" />`
      : html`<${Table}
          label="Model versions"
          empty="No version yet."
          rows=${rows}
          columns=${[
            ["Version", (v) => html`<button class="link" aria-pressed=${v.version === selected}
              onClick=${() => select(v.version === selected ? null : v.version)}>Version ${v.version}</button>`],
            ["Format", (v) => v.format],
            ["Status", (v) => html`<${VersionStatus} status=${v.status} />`],
            ["Environment", (v) => envLine(v, envs.data)],
            ["Created", (v) => html`<${Time} ms=${v.creation_timestamp} /> <span class="muted small">by ${v.creator}</span>`],
            ["", (v) => html`<button class="primary" onClick=${() => setDeploying(v)}
              aria-label=${`Deploy version ${v.version}`}>Deploy</button>`],
          ]}
        />`}
    ${selected && versions.data && !current && html`<p class="error" role="alert">Version ${selected} does not exist.</p>`}
    ${current && html`<${VersionDetails} version=${current} envs=${envs.data} />`}
    ${deploying && html`<${DeployForm} model=${name} version=${deploying.version} onClose=${() => setDeploying(null)} />`}
  </main>`;
}

/** The form field a create error names: from the message's path, else a field it mentions. */
const FORM_FIELDS = [
  "name",
  "workload_size",
  "workload_type",
  "scale_to_zero_enabled",
  "min_provisioned_throughput",
  "max_provisioned_throughput",
];
function fieldOf(error) {
  const last = error.field?.split(".").pop();
  if (FORM_FIELDS.includes(last)) return last;
  const message = error.message ?? "";
  if (/endpoint (with )?name/i.test(message)) return "name";
  return FORM_FIELDS.find((f) => f !== "name" && message.includes(f)) ?? null;
}

const defaultEndpointName = (model) => model.replace(/[^A-Za-z0-9_-]+/g, "-").slice(0, 63);

/** A dialog deploying `model` version `version` to a new endpoint, then going to it. */
export function DeployForm({ model, version, onClose }) {
  const ref = useRef();
  const [form, setForm] = useState({
    name: defaultEndpointName(model),
    sizing: "size",
    workload_size: "Small",
    workload_type: "CPU",
    scale_to_zero_enabled: false,
    min_provisioned_throughput: 0,
    max_provisioned_throughput: 0,
  });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const optimization = useLoad(() => get(optimizationPath(model, version)), [model, version]);
  const chunk = optimization.data?.optimizable ? optimization.data.throughput_chunk_size : null;
  useEffect(() => ref.current?.showModal(), []);
  useEffect(() => {
    if (chunk) setForm((f) => ({ ...f, max_provisioned_throughput: f.max_provisioned_throughput || chunk }));
  }, [chunk]);

  const set = (key) => (event) => {
    const { type, checked, value } = event.target;
    setForm((f) => ({ ...f, [key]: type === "checkbox" ? checked : type === "number" ? Number(value) : value }));
  };
  const failed = error && fieldOf(error);
  useEffect(() => {
    if (failed) document.getElementById(`deploy-${failed}`)?.focus();
  }, [error]);

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const entity = {
      entity_name: model,
      entity_version: version,
      scale_to_zero_enabled: form.scale_to_zero_enabled,
      ...(form.sizing === "throughput"
        ? {
            min_provisioned_throughput: form.min_provisioned_throughput,
            max_provisioned_throughput: form.max_provisioned_throughput,
          }
        : { workload_size: form.workload_size, workload_type: form.workload_type }),
    };
    try {
      const endpoint = await post("/api/2.0/serving-endpoints", {
        name: form.name.trim(),
        config: { served_entities: [entity] },
      });
      navigate(`/console/endpoints/${enc(endpoint.name ?? form.name.trim())}`);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  // One labelled input per row, the server's message under the one it names.
  const row = (key, label, input) => html`<div class="row">
      <label for=${`deploy-${key}`}>${label}</label>
      ${input}
    </div>
    ${failed === key && html`<span class="field-error" id=${`deploy-${key}-error`}>${error.message}</span>`}`;
  const invalid = (key) =>
    failed === key ? { "aria-invalid": "true", "aria-describedby": `deploy-${key}-error` } : {};
  const input = (key, attributes) =>
    html`<input id=${`deploy-${key}`} value=${form[key]} onInput=${set(key)} ...${attributes} ...${invalid(key)} />`;
  const select = (key, choices) => html`<select id=${`deploy-${key}`} value=${form[key]} onChange=${set(key)}
    ...${invalid(key)}>${choices.map((c) => html`<option value=${c}>${c}</option>`)}</select>`;
  const throughput = form.sizing === "throughput" && chunk;

  return html`<dialog ref=${ref} onClose=${onClose} aria-labelledby="deploy-title" class="deploy">
    <form onSubmit=${submit}>
      <h2 id="deploy-title">Deploy ${model} version ${version}</h2>
      ${row("name", "Endpoint name", input("name", {
        required: true, maxlength: 63, pattern: "[A-Za-z0-9_\\-]+", autocomplete: "off",
        title: "Letters, digits, - and _",
      }))}
      ${optimization.loading && !optimization.data
        ? html`<p class="muted small" aria-live="polite">Checking whether this version can use provisioned
            throughput (an LLM never measured on this host is calibrated first: tens of seconds)…</p>`
        : chunk &&
          html`<fieldset>
            <legend>Sizing</legend>
            <label><input type="radio" name="sizing" value="size" checked=${form.sizing === "size"}
              onChange=${set("sizing")} /> Workload size</label>
            <label><input type="radio" name="sizing" value="throughput" checked=${form.sizing === "throughput"}
              onChange=${set("sizing")} /> Provisioned throughput</label>
          </fieldset>`}
      ${throughput
        ? html`${row("min_provisioned_throughput", "Minimum throughput (tokens/s)",
              input("min_provisioned_throughput", { type: "number", min: 0, step: chunk, required: true }))}
            ${row("max_provisioned_throughput", "Maximum throughput (tokens/s)",
              input("max_provisioned_throughput", { type: "number", min: chunk, step: chunk, required: true }))}
            <p class="muted small">In multiples of ${chunk} tokens/s, the throughput one replica of this
              version sustains on this host.</p>`
        : html`${row("workload_size", "Workload size", select("workload_size", WORKLOAD_SIZES))}
            ${row("workload_type", "Workload type", select("workload_type", WORKLOAD_TYPES))}`}
      <div class="row">
        <input type="checkbox" id="deploy-scale_to_zero_enabled" checked=${form.scale_to_zero_enabled}
          onChange=${set("scale_to_zero_enabled")} ...${invalid("scale_to_zero_enabled")} />
        <label for="deploy-scale_to_zero_enabled">Scale to zero when idle</label>
      </div>
      ${failed === "scale_to_zero_enabled" &&
      html`<span class="field-error" id="deploy-scale_to_zero_enabled-error">${error.message}</span>`}
      ${error && !failed && html`<${ErrorBox} error=${error} />`}
      <div class="actions">
        <button type="button" onClick=${onClose}>Cancel</button>
        <button type="submit" class="primary" disabled=${busy}>${busy ? "Deploying…" : "Deploy"}</button>
      </div>
    </form>
  </dialog>`;
}

export function GardenPage() {
  const garden = useLoad(() => get("/api/2.0/berth/garden"), []);
  const models = useLoad(() => get("/api/2.0/models"), []);
  const [registering, setRegistering] = useState(null);
  const [error, setError] = useState(null);
  const [deploying, setDeploying] = useState(null);
  const registered = new Map((models.data?.models ?? []).map((m) => [m.name, m]));

  // Registering installs the package when it is missing, so it may take a while.
  const register = async (entry) => {
    setRegistering(entry.name);
    setError(null);
    try {
      const { model_version } = await post(`/api/2.0/berth/garden/${enc(entry.name)}/register`, {});
      models.reload();
      garden.reload();
      setDeploying(model_version);
    } catch (e) {
      setError(e);
    } finally {
      setRegistering(null);
    }
  };
  return html`<main>
    <div class="page-head">
      <h1>Model garden</h1>
    </div>
    <p class="muted">Open models that berth can register and serve. Deploy registers the model as a new
      version (installing its package first if this server lacks it), then deploys that version.</p>
    <${ErrorBox} error=${error ?? garden.error} onClose=${error ? () => setError(null) : undefined} />
    ${garden.loading && !garden.data
      ? html`<${Loading} what="the model garden" />`
      : html`<${Table}
          label="Model garden"
          empty="The garden is empty."
          rows=${garden.data?.models ?? []}
          columns=${[
            ["Model", (m) => html`<strong>${m.name}</strong><div class="muted small">${m.title}</div>`],
            ["Task", (m) => m.task],
            ["Format", (m) => m.format],
            ["License", (m) => m.license],
            ["Size", (m) => fmtBytes(m.size_bytes)],
            ["Package", (m) => html`<code>${m.package}==${m.version}</code>
              <div class="muted small">${m.installed ? `installed (${m.installed_in})` : "installed at registration"}</div>`],
            ["Registered", (m) => {
              const found = registered.get(m.name);
              return found
                ? html`<${Link} href=${modelHref(m.name)}>latest v${found.latest_version}</${Link}>`
                : html`<span class="muted">no</span>`;
            }],
            ["", (m) => html`<button class="primary" disabled=${registering !== null}
              aria-label=${`Deploy ${m.name}`} onClick=${() => register(m)}>
              ${registering === m.name ? "Registering…" : "Deploy"}</button>`],
          ]}
        />`}
    ${deploying && html`<${DeployForm} model=${deploying.name} version=${deploying.version}
      onClose=${() => setDeploying(null)} />`}
  </main>`;
}
