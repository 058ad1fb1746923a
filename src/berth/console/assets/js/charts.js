// The endpoint's charts over the last hour, from berth's per-minute metrics history.
import { useEffect, useRef, useState } from "../vendor/preact-htm.js";
import uPlot from "../vendor/uplot.js";
import { endpointPath, get } from "./api.js";
import { ErrorBox, html, Loading, useLoad } from "./ui.js";

const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04"];

/** One uPlot line chart: `lines` is `[[label, values]]` over `times` (epoch ms). */
export function Chart({ title, unit, times, lines, id }) {
  const box = useRef();
  useEffect(() => {
    if (!box.current) return undefined;
    const width = () => Math.max(box.current.clientWidth, 280);
    const plot = new uPlot(
      {
        width: width(),
        height: 200,
        series: [
          {},
          ...lines.map(([label], i) => ({
            label,
            stroke: COLOURS[i % COLOURS.length],
            width: 2,
            spanGaps: false,
            // A minute between two without data has no line to draw: its dot shows it.
            points: { show: true, size: 5 },
            value: (_, v) => (v === null || v === undefined ? "—" : `${+v.toFixed(2)} ${unit}`),
          })),
        ],
        axes: [{}, { label: unit, size: 60 }],
        scales: { y: { range: (_, min, max) => [0, Math.max(max, 1) * 1.1] } },
        legend: { live: true },
      },
      [times.map((t) => t / 1000), ...lines.map(([, values]) => values)],
      box.current,
    );
    const resize = () => plot.setSize({ width: width(), height: 200 });
    addEventListener("resize", resize);
    return () => {
      removeEventListener("resize", resize);
      plot.destroy();
    };
  }, [JSON.stringify([times, lines])]);
  const hasData = lines.some(([, values]) => values.some((v) => v !== null && v !== 0));
  return html`<figure class="chart" id=${id} data-has-data=${hasData ? "true" : "false"}>
    <figcaption>${title}${hasData ? "" : html` <span class="muted small">(no data in this window)</span>`}</figcaption>
    <div ref=${box} role="img" aria-label=${`${title}, last hour`}></div>
  </figure>`;
}

export function MetricsCharts({ endpoint }) {
  const [minutes, setMinutes] = useState(60);
  const { data, error } = useLoad(
    () => get(`${endpointPath(endpoint.name)}/metrics-history`, { minutes }),
    [endpoint.name, minutes],
    10000,
  );
  if (!data) return html`<${ErrorBox} error=${error} />${!error && html`<${Loading} what="metrics" />`}`;
  const times = data.minutes;
  const total = data.total ?? {};
  const entities = Object.entries(data.series ?? {});
  const llm =
    (endpoint.task ?? "").startsWith("llm/") ||
    entities.some(([, s]) => (s.output_tokens_per_s ?? []).some((v) => v > 0));
  return html`<section aria-label="Metrics" class="charts">
    <label>Window <select value=${minutes} onChange=${(e) => setMinutes(Number(e.target.value))}>
      <option value="60">Last hour</option><option value="360">Last 6 hours</option>
      <option value="1440">Last day</option></select></label>
    <${ErrorBox} error=${error} />
    <div class="chart-grid">
      <${Chart} id="chart-requests" title="Requests per second" unit="req/s" times=${times}
        lines=${entities.length > 1
          ? entities.map(([name, s]) => [name, s.requests_per_s])
          : [["requests", total.requests_per_s ?? []]]} />
      <${Chart} id="chart-latency" title="Latency" unit="ms" times=${times}
        lines=${[["p50", total.p50_ms ?? []], ["p99", total.p99_ms ?? []]]} />
      <${Chart} id="chart-errors" title="Errors per second" unit="err/s" times=${times}
        lines=${[["all errors", total.errors_per_s ?? []], ["5xx", total.server_errors_per_s ?? []]]} />
      ${llm && html`<${Chart} id="chart-tokens" title="Tokens per second" unit="tok/s" times=${times}
        lines=${[["input", total.input_tokens_per_s ?? []], ["output", total.output_tokens_per_s ?? []]]} />`}
      <${Chart} id="chart-replicas" title="Replicas" unit="replicas" times=${times}
        lines=${entities.flatMap(([name, s]) => [[`${name} ready`, s.replicas_current ?? []], [`${name} desired`, s.replicas_desired ?? []]])} />
    </div>
  </section>`;
}
