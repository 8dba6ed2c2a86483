// Builds static/build/ from static/scss/ and npm packages: `npm run build`.
//
//   static/build/app.css        static/scss/app.scss compiled (compressed, no source map)
//   static/build/assets/        NHS.UK frontend's icons and favicons, which app.css references
//   static/build/htmx.min.js    htmx, for the staff pages
//
// Plain Node (no shell commands), so it runs the same on any OS and in the Docker build.
// It fails if the CSS would fetch anything from another host (the short link in a patient's
// address bar must never leak in a Referer) or names an asset the build did not copy
// (Django's manifest storage would refuse it at collectstatic).

import { existsSync } from "node:fs";
import { cp, mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

import * as sass from "sass";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const out = path.join(root, "static", "build");
const nodeModules = path.join(root, "node_modules");
// Must match $nhsuk-assets-path in static/scss/app.scss.
const assetsUrl = "/static/build/assets/";

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

const result = await sass.compileAsync(path.join(root, "static", "scss", "app.scss"), {
  style: "compressed",
  sourceMap: false,
  importers: [new sass.NodePackageImporter(root)],
  // Deprecation notices from inside nhsuk-frontend are its maintainers' to act on.
  quietDeps: true,
});
const css = result.css;

const problems = [];
for (const [, rawUrl] of css.matchAll(/url\(\s*([^)]*?)\s*\)/g)) {
  const url = rawUrl.replace(/^["']|["']$/g, "");
  if (url.startsWith("data:") || url.startsWith("#")) continue;
  if (!url.startsWith(assetsUrl)) {
    problems.push(`app.css refers to ${url}, outside ${assetsUrl}`);
    continue;
  }
  const relative = url.slice(assetsUrl.length).split(/[?#]/)[0];
  if (!existsSync(path.join(nodeModules, "nhsuk-frontend", "dist", "nhsuk", "assets", relative))) {
    problems.push(`app.css refers to ${url}, which nhsuk-frontend does not ship`);
  }
}
if (/@import|@font-face|https?:\/\//i.test(css)) {
  problems.push("app.css contains @import, @font-face or an http(s) URL: it must load nothing from elsewhere");
}
if (problems.length) {
  for (const problem of problems) console.error(problem);
  process.exit(1);
}

await writeFile(path.join(out, "app.css"), css);
await cp(path.join(nodeModules, "nhsuk-frontend", "dist", "nhsuk", "assets"), path.join(out, "assets"), {
  recursive: true,
});
await cp(path.join(nodeModules, "htmx.org", "dist", "htmx.min.js"), path.join(out, "htmx.min.js"));

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
console.log(`static/build/app.css      ${kib(Buffer.byteLength(css))}`);
console.log("static/build/assets/      NHS.UK frontend icons and favicons");
console.log("static/build/htmx.min.js  htmx");
