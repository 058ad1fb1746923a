// The endpoint list: state and tag filters run on the server, the name search here; all three
// live in the URL, so a link shares the view.
import { useMemo, useState } from "../vendor/preact-htm.js";
import { get } from "./api.js";
import { ErrorBox, html, Link, Loading, navigate, StateBadge, Table, Tags, Time, useLoad, useLocation } from "./ui.js";

export const STATE_CHOICES = [
  ["", "Any state"],
  ["READY", "Ready"],
  ["NOT_READY", "Not ready"],
  ["IN_PROGRESS", "Updating"],
  ["UPDATE_FAILED", "Update failed"],
  ["UPDATE_CANCELED", "Update canceled"],
  ["NOT_UPDATING", "Not updating"],
];

function servedSummary(endpoint) {
  const entities = endpoint.config?.served_entities ?? endpoint.pending_config?.served_entities ?? [];
  return entities
    .map((e) => {
      if (e.external_model) return `${e.name} → ${e.external_model.provider}:${e.external_model.name}`;
      return e.entity_version ? `${e.entity_name} v${e.entity_version}` : e.name;
    })
    .join(", ") || "—";
}

function withQuery(query, changes) {
  const next = new URLSearchParams(query);
  for (const [key, value] of Object.entries(changes)) {
    next.delete(key);
    for (const item of [].concat(value ?? [])) if (item) next.append(key, item);
  }
  const text = next.toString();
  return `/console/endpoints${text ? `?${text}` : ""}`;
}

export function EndpointList() {
  const { query } = useLocation();
  const states = query.getAll("state");
  const tags = query.getAll("tag");
  const search = query.get("q") ?? "";
  const [tagDraft, setTagDraft] = useState("");
  const { data, error, loading } = useLoad(
    () => get("/api/2.0/serving-endpoints", { state: states, tag: tags }),
    [states.join(","), tags.join(",")],
    5000,
  );
  const endpoints = (data?.endpoints ?? []).filter((e) => e.name.includes(search.trim()));
  const filtered = Boolean(states.length || tags.length || search);
  // Drawn again when the list or the search changes (each refresh), not on each keystroke in
  // the tag box: 500 rows take a while to diff.
  const table = useMemo(
    () => html`<${Table}
          label="Serving endpoints"
          empty=${filtered ? "No endpoint matches these filters." : "No endpoint yet: deploy a model."}
          rows=${endpoints}
          columns=${[
            ["Name", (e) => html`<${Link} href=${`/console/endpoints/${encodeURIComponent(e.name)}`}>${e.name}</${Link}>`],
            ["State", (e) => html`<${StateBadge} state=${e.state} />`],
            ["Served entities", servedSummary],
            ["Task", (e) => e.task ?? html`<span class="muted">—</span>`],
            ["Creator", (e) => e.creator],
            ["Last update", (e) => html`<${Time} ms=${e.last_updated_timestamp} />`],
            ["Tags", (e) => html`<${Tags} tags=${e.tags} />`],
          ]}
        />`,
    [data, search, filtered],
  );
  const go = (changes) => navigate(withQuery(query, changes), { replace: true });
  const addTag = (event) => {
    event.preventDefault();
    if (tagDraft.trim()) go({ tag: [...tags, tagDraft.trim()] });
    setTagDraft("");
  };
  return html`<main>
    <div class="page-head">
      <h1>Serving endpoints</h1>
      <${Link} class="button primary" href="/console/models">Deploy a model</${Link}>
    </div>
    <div class="filters" role="search">
      <label>Search <input type="search" name="q" placeholder="Name contains…" value=${search}
        onInput=${(e) => go({ q: e.target.value })} /></label>
      <label>State <select name="state" value=${states[0] ?? ""}
        onChange=${(e) => go({ state: e.target.value })}>
        ${STATE_CHOICES.map(([value, label]) => html`<option value=${value}>${label}</option>`)}
      </select></label>
      <form onSubmit=${addTag} class="inline">
        <label>Tag <input name="tag" placeholder="key or key=value" value=${tagDraft}
          onInput=${(e) => setTagDraft(e.target.value)} /></label>
        <button type="submit">Add filter</button>
      </form>
      ${tags.map(
        (tag) => html`<span class="chip">${tag}
          <button class="link" aria-label=${`Remove tag filter ${tag}`}
            onClick=${() => go({ tag: tags.filter((t) => t !== tag) })}>×</button></span>`,
      )}
    </div>
    <${ErrorBox} error=${error} />
    ${loading && !data
      ? html`<${Loading} what="endpoints" />`
      : html`<p class="muted count" aria-live="polite">${endpoints.length} endpoint${endpoints.length === 1 ? "" : "s"}</p>
        ${table}`}
  </main>`;
}
