// Querying an endpoint from the browser: a panel for the four MLflow input formats, and a
// chat playground that streams an LLM endpoint's answer token by token.
import { useEffect, useRef, useState } from "../vendor/preact-htm.js";
import { call, enc, endpointPath, get, stream } from "./api.js";
import { ErrorBox, html } from "./ui.js";

const FORMATS = ["dataframe_split", "dataframe_records", "instances", "inputs"];

const CHAT = "llm/v1/chat";

/** Whether the endpoint serves a chat model: an external one says so in its config, an open
 * LLM in its model version's details (which a query-only user may not read: then no). */
export async function servesChat(endpoint) {
  const entities = endpoint.config?.served_entities ?? [];
  if (endpoint.task === CHAT || entities.some((e) => e.external_model?.task === CHAT)) return true;
  const versions = await Promise.all(
    entities
      .filter((e) => e.entity_name && e.entity_version)
      .map((e) =>
        get(`/api/2.0/models/${enc(e.entity_name)}/versions/${enc(e.entity_version)}`).catch(() => null),
      ),
  );
  return versions.some((v) => v?.model_version?.details?.task === CHAT);
}

/** The request examples of the endpoint's OpenAPI document, by format. */
function examplesFrom(openapi) {
  const found = {};
  for (const item of Object.values(openapi?.paths ?? {})) {
    const content = item.post?.requestBody?.content?.["application/json"] ?? {};
    const candidates = [content.example, ...Object.values(content.examples ?? {}).map((e) => e.value)];
    for (const example of candidates) {
      if (!example || typeof example !== "object") continue;
      const format = FORMATS.find((f) => f in example);
      if (format && !found[format]) found[format] = example;
    }
  }
  return found;
}

/** Fills in the formats the document lacks from one it has (all four carry the same rows). */
function allFormats(examples) {
  const split = examples.dataframe_split?.dataframe_split;
  const records =
    examples.dataframe_records?.dataframe_records ??
    (split ? split.data.map((row) => Object.fromEntries(split.columns.map((c, i) => [c, row[i]]))) : null);
  const filled = { ...examples };
  if (records) {
    filled.dataframe_records ??= { dataframe_records: records };
    filled.dataframe_split ??= {
      dataframe_split: { columns: Object.keys(records[0] ?? {}), data: records.map(Object.values) },
    };
    filled.instances ??= { instances: records };
    filled.inputs ??= { inputs: records };
  }
  filled.dataframe_split ??= { dataframe_split: { columns: ["x"], data: [[1.0]] } };
  filled.dataframe_records ??= { dataframe_records: [{ x: 1.0 }] };
  filled.instances ??= { instances: [[1.0]] };
  filled.inputs ??= { inputs: [[1.0]] };
  return filled;
}

export function QueryPanel({ endpoint }) {
  const [format, setFormat] = useState("dataframe_split");
  const [bodies, setBodies] = useState(null);
  const [answer, setAnswer] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    get(`${endpointPath(endpoint.name)}/openapi`)
      .catch(() => ({}))
      .then((doc) => {
        const examples = allFormats(examplesFrom(doc));
        setBodies(Object.fromEntries(FORMATS.map((f) => [f, JSON.stringify(examples[f], null, 2)])));
        setFormat(FORMATS.find((f) => examplesFrom(doc)[f]) ?? "dataframe_split");
      });
  }, [endpoint.name]);
  const send = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const started = performance.now();
    try {
      let body;
      try {
        body = JSON.parse(bodies[format]);
      } catch (e) {
        throw { code: "INVALID_JSON", message: `The request is not JSON: ${e.message}` };
      }
      const result = await call("POST", `/serving-endpoints/${encodeURIComponent(endpoint.name)}/invocations`, { body });
      setAnswer({ result, ms: performance.now() - started });
    } catch (e) {
      setAnswer(null);
      setError(e);
    }
    setBusy(false);
  };
  if (!bodies) return html`<p class="loading">Loading the endpoint's examples…</p>`;
  return html`<form class="query" onSubmit=${send} aria-label="Query the endpoint">
    <fieldset class="formats">
      <legend>Input format</legend>
      ${FORMATS.map(
        (f) => html`<label><input type="radio" name="format" value=${f} checked=${format === f}
          onChange=${() => setFormat(f)} /> ${f}</label>`,
      )}
    </fieldset>
    <label for="query-body">Request body</label>
    <textarea id="query-body" class="code" rows="12" spellcheck="false" value=${bodies[format]}
      onInput=${(e) => setBodies({ ...bodies, [format]: e.target.value })}></textarea>
    <div class="actions"><button class="primary" type="submit" disabled=${busy}>Send request</button></div>
    <${ErrorBox} error=${error} />
    ${answer &&
    html`<section aria-label="Response">
      <h2>Response <span class="muted small">${answer.ms.toFixed(0)} ms</span></h2>
      <pre class="code response">${JSON.stringify(answer.result, null, 2)}</pre>
    </section>`}
  </form>`;
}

export function ChatPlayground({ endpoint }) {
  const [messages, setMessages] = useState([]);
  const [draft, setDraft] = useState("");
  const [system, setSystem] = useState("");
  const [temperature, setTemperature] = useState(0.7);
  const [maxTokens, setMaxTokens] = useState(256);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const abort = useRef(null);
  const log = useRef();
  useEffect(() => {
    if (log.current) log.current.scrollTop = log.current.scrollHeight;
  }, [messages]);
  const send = async (event) => {
    event.preventDefault();
    if (!draft.trim()) return;
    const history = [...messages, { role: "user", content: draft.trim() }];
    setMessages([...history, { role: "assistant", content: "" }]);
    setDraft("");
    setError(null);
    setBusy(true);
    abort.current = new AbortController();
    let text = "";
    try {
      await stream(
        "/serving-endpoints/chat/completions",
        {
          model: endpoint.name,
          messages: [...(system.trim() ? [{ role: "system", content: system.trim() }] : []), ...history],
          temperature: Number(temperature),
          max_tokens: Number(maxTokens),
          stream: true,
        },
        (chunk) => {
          text += chunk.choices?.[0]?.delta?.content ?? "";
          setMessages([...history, { role: "assistant", content: text }]);
        },
        abort.current.signal,
      );
    } catch (e) {
      if (e.name !== "AbortError") setError(e);
    }
    setBusy(false);
  };
  return html`<section class="chat" aria-label="Chat playground">
    <div class="chat-settings">
      <label>System prompt <input value=${system} onInput=${(e) => setSystem(e.target.value)}
        placeholder="You are a helpful assistant." /></label>
      <label>Temperature <input type="number" min="0" max="2" step="0.1" value=${temperature}
        onInput=${(e) => setTemperature(e.target.value)} /></label>
      <label>Max tokens <input type="number" min="1" max="8192" value=${maxTokens}
        onInput=${(e) => setMaxTokens(e.target.value)} /></label>
      <button type="button" onClick=${() => setMessages([])} disabled=${busy}>Clear</button>
    </div>
    <ol class="messages" ref=${log} aria-live="polite" aria-label="Conversation">
      ${messages.map(
        (m) => html`<li class=${`message message-${m.role}`}><span class="role">${m.role}</span>
          <div class="content">${m.content || (busy ? "…" : "")}</div></li>`,
      )}
    </ol>
    <${ErrorBox} error=${error} />
    <form class="chat-input" onSubmit=${send}>
      <label for="chat-message" class="visually-hidden">Message</label>
      <textarea id="chat-message" rows="2" placeholder="Send a message" value=${draft}
        onInput=${(e) => setDraft(e.target.value)}
        onKeyDown=${(e) => {
          if (e.key === "Enter" && !e.shiftKey) send(e);
        }}></textarea>
      ${busy
        ? html`<button type="button" onClick=${() => abort.current?.abort()}>Stop</button>`
        : html`<button class="primary" type="submit">Send</button>`}
    </form>
  </section>`;
}
