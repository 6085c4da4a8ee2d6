// Applies many cases to workerd's D1 in one process, exactly as `wrangler d1 migrations apply
// --local` and `wrangler d1 execute --local` do (wrangler 4.164: its splitter, its tracking SQL,
// db.batch over miniflare's D1 binding), one D1 database per case.
//   usage: node d1_driver.cjs <wrangler package dir> <job.json>   → JSON results on stdout
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const [wranglerDir, jobFile] = process.argv.slice(2);
const modules = path.join(wranglerDir, "node_modules");
const { Miniflare, convertV4MiniflareOptions } = require(path.join(modules, "miniflare"));
const { unstable_splitSqlQuery: splitSqlQuery } = require(path.join(modules, "wrangler"));

const TABLE = '"d1_migrations"';
const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS ${TABLE}(
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		name       TEXT UNIQUE,
		applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);`;

function migrationQuery(file) {
  return `${file.text}\nINSERT INTO ${TABLE} (name)\nvalues ('${file.name.replace(/'/g, "''")}');`;
}

async function run(db, sql) {
  const queries = splitSqlQuery(sql);
  return db.batch(queries.map((query) => db.prepare(query)));
}

async function applyCase(db, job) {
  const applied = [];
  if (job.mode === "migrations") {
    await run(db, CREATE_TABLE);
  }
  for (const file of job.files) {
    const sql = job.mode === "migrations" ? migrationQuery(file) : file.text;
    try {
      await run(db, sql);
    } catch (error) {
      const cause = error?.cause ?? error;
      return { id: job.id, applied, failed: file.name, error: String(cause.message ?? cause) };
    }
    applied.push(file.name);
  }
  return { id: job.id, applied, failed: null, error: "" };
}

async function main() {
  const job = JSON.parse(fs.readFileSync(jobFile, "utf8"));
  const d1Databases = Object.fromEntries(job.cases.map((c) => [`DB_${c.id}`, c.database_id]));
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      modules: true,
      script: "",
      resourcePersistencePath: path.join(job.persist, "v3"),
      d1Databases,
    })
  );
  const results = [];
  try {
    for (const c of job.cases) {
      results.push(await applyCase(await mf.getD1Database(`DB_${c.id}`), c));
    }
  } finally {
    await mf.dispose();
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  process.stderr.write(String(error?.stack ?? error));
  process.exit(2);
});
