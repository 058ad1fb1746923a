// Copies the console's third-party modules (and their licences) from node_modules into the
// package. With an argument, writes there instead: the suite compares that copy with the one
// committed.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, "..", "src", "berth", "console", "assets", "vendor");
const files = {
  "htm/preact/standalone.module.js": "preact-htm.js",
  "htm/LICENSE": "LICENSE-htm-preact.txt",
  "uplot/dist/uPlot.esm.js": "uplot.js",
  "uplot/dist/uPlot.min.css": "uplot.css",
  "uplot/LICENSE": "LICENSE-uplot.txt",
  "js-yaml/dist/js-yaml.mjs": "js-yaml.js",
  "js-yaml/LICENSE": "LICENSE-js-yaml.txt",
};
mkdirSync(out, { recursive: true });
for (const [from, to] of Object.entries(files)) {
  copyFileSync(join(here, "node_modules", from), join(out, to));
}
