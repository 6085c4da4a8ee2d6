// Run once at image build: records the versions of the engine this image runs in versions.json.
// SQLite's version is read from the workerd binary itself (its SQLITE_VERSION and SQLITE_SOURCE_ID
// strings): the D1 authorizer refuses sqlite_version(), so no query can tell it.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(join(process.cwd(), "package.json"));
const wranglerDir = dirname(require.resolve("wrangler/package.json"));
const fromWrangler = createRequire(join(wranglerDir, "package.json"));
const version = (req, name) => JSON.parse(readFileSync(req.resolve(`${name}/package.json`), "utf8")).version;
const workerd = fromWrangler("workerd");
const binary = readFileSync(workerd.default).toString("latin1");

const versions = [...new Set(Array.from(binary.matchAll(/(?<![0-9.])(3\.\d{1,2}\.\d{1,2})\0/g), (m) => m[1]))];
const sourceIds = [...new Set(Array.from(binary.matchAll(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [0-9a-f]{64}/g), (m) => m[0]))];
if (versions.length !== 1) throw new Error(`cannot tell SQLite's version from workerd: found ${versions}`);

const result = {
  wrangler: version(require, "wrangler"),
  miniflare: version(fromWrangler, "miniflare"),
  workerd: version(fromWrangler, "workerd"),
  compatibility_date: workerd.compatibilityDate,
  sqlite: versions[0],
  sqlite_source_id: sourceIds[0] ?? null,
};
writeFileSync("versions.json", JSON.stringify(result, null, 2) + "\n");
console.log(JSON.stringify(result));
