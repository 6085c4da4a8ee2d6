// The D1 REST API (the subset d1check uses) over the real D1 engine: miniflare drives workerd,
// and every statement runs on a D1 binding. Databases are bindings from a pool that grows
// (by setOptions, which restarts workerd) only when every binding is taken. Time Travel keeps
// real snapshots (schema and rows, read through the binding) in memory, keyed by bookmark; a
// restore drops everything and recreates the kept state. Export follows D1's polling protocol.

import { createHash, randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { splitStatements } from "./split.mjs";

const require = createRequire(import.meta.url);
const fromWrangler = createRequire(require.resolve("wrangler/package.json"));
const { Miniflare, convertV4MiniflareOptions } = fromWrangler("miniflare");

const HERE = new URL(".", import.meta.url);
const WORKER = readFileSync(new URL("worker.mjs", HERE), "utf8");
const VERSIONS = JSON.parse(readFileSync(new URL("versions.json", HERE), "utf8"));

const config = {
  host: process.env.D1_ENGINE_HOST || "127.0.0.1",
  port: Number(process.env.D1_ENGINE_PORT || "8787"),
  token: process.env.D1_ENGINE_TOKEN || "",
  accountId: process.env.D1_ENGINE_ACCOUNT_ID || "",
  state: process.env.D1_ENGINE_STATE || "/tmp/d1-engine-state",
  slots: Number(process.env.D1_ENGINE_SLOTS || "256"),
  bookmarksPerDatabase: Number(process.env.D1_ENGINE_BOOKMARKS || "32"),
  bookmarkBytes: Number(process.env.D1_ENGINE_BOOKMARK_BYTES || String(256 * 1024 * 1024)),
  exportPolls: Number(process.env.D1_ENGINE_EXPORT_POLLS || "1"),
};
delete process.env.D1_ENGINE_TOKEN;

const PREFIX = `/client/v4/accounts/${config.accountId}/d1/database`;
const slots = []; // {binding, uuid}; the pool of D1 bindings
const free = []; // indexes into slots
const databases = new Map(); // uuid -> {uuid, name, created_at, version, binding}
const exportJobs = new Map(); // at_bookmark -> {key, filename, dump, error, pollsLeft}
const downloads = new Map(); // key -> dump text
let snapshotBytes = 0;
let bookmarkSequence = 0;
let miniflare;
let inflight = 0;
let growing = null;

function addSlots(count) {
  for (let i = 0; i < count; i += 1) {
    free.push(slots.length);
    slots.push({ binding: `DB_${slots.length}`, uuid: randomUUID() });
  }
}

function miniflareOptions() {
  const d1Databases = Object.fromEntries(slots.map((s) => [s.binding, s.uuid]));
  return convertV4MiniflareOptions({
    modules: true,
    script: WORKER,
    compatibilityDate: VERSIONS.compatibility_date,
    d1Databases,
    resourcePersistencePath: config.state,
    host: "127.0.0.1",
    port: 0,
    logRequests: false,
  });
}

async function grow() {
  if (growing === null) {
    growing = (async () => {
      while (inflight > 0) await new Promise((r) => setTimeout(r, 1));
      addSlots(Math.max(slots.length, 16));
      await miniflare.setOptions(miniflareOptions());
    })();
    try {
      await growing;
    } finally {
      growing = null;
    }
  } else {
    await growing;
  }
}

async function engine(body) {
  while (growing !== null) await growing;
  inflight += 1;
  try {
    const response = await miniflare.dispatchFetch("http://engine/", {
      method: "POST",
      body: JSON.stringify(body),
    });
    return await response.json();
  } finally {
    inflight -= 1;
  }
}

function envelope(result, errors = []) {
  return { result, success: errors.length === 0, errors, messages: [] };
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function fail(res, status, code, message) {
  send(res, status, envelope(null, [{ code, message }]));
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString("utf8");
  return text.trim() === "" ? {} : JSON.parse(text);
}

function publicView(db) {
  const { binding, ...rest } = db;
  return rest;
}

// --- Time Travel ---------------------------------------------------------------------------

const MAX_WRITES = 10000;

function recordWrite(db, results) {
  const changed = results.some((r) => r?.meta?.changed_db || Number(r?.meta?.changes ?? 0) > 0);
  if (!changed) return;
  db.writes.push(Date.now());
  if (db.writes.length > MAX_WRITES) db.writes.splice(0, db.writes.length - MAX_WRITES);
}

function hex8(n) {
  return (n >>> 0).toString(16).padStart(8, "0");
}

function forget(db, count) {
  for (const kept of db.snapshots.splice(0, count)) snapshotBytes -= kept.size;
}

function evictOverBudget() {
  while (snapshotBytes > config.bookmarkBytes) {
    let oldest = null;
    for (const db of databases.values()) {
      const first = db.snapshots[0];
      if (first && db.snapshots.length > 1 && (oldest === null || first.seq < oldest.snapshots[0].seq)) {
        oldest = db;
      }
    }
    if (oldest === null) return;
    forget(oldest, 1);
  }
}

class EngineError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// A snapshot of now: a new bookmark, unless nothing changed since the newest one.
async function snapshot(db) {
  const answer = await engine({ binding: db.binding, op: "dump" });
  if (!answer.ok) throw new EngineError(400, 7500, answer.message);
  const text = JSON.stringify(answer.results);
  const hash = createHash("sha256").update(text).digest("hex");
  const newest = db.snapshots[db.snapshots.length - 1];
  const now = Date.now();
  if (newest !== undefined && newest.hash === hash && !db.writes.some((w) => w > newest.takenAt)) {
    return newest;
  }
  bookmarkSequence += 1;
  const seconds = Math.floor(now / 1000);
  const kept = {
    bookmark: `${hex8(bookmarkSequence)}-${hex8(db.number)}-${hex8(seconds)}-${hash.slice(0, 32)}`,
    seq: bookmarkSequence,
    takenAt: now,
    hash,
    state: answer.results,
    size: text.length,
  };
  db.snapshots.push(kept);
  snapshotBytes += kept.size;
  if (db.snapshots.length > config.bookmarksPerDatabase) {
    forget(db, db.snapshots.length - config.bookmarksPerDatabase);
  }
  evictOverBudget();
  return kept;
}

function parseMoment(text) {
  const moment = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : Date.parse(text);
  if (Number.isNaN(moment)) {
    throw new EngineError(400, 7400, `The request is malformed: timestamp ${text} is not RFC 3339 or Unix seconds`);
  }
  return moment;
}

// The bookmark of the state at `timestamp`: now if nothing was written since, else a kept
// snapshot with no write between it and the timestamp.
async function bookmarkAt(db, timestamp) {
  if (timestamp === null || timestamp === "") return (await snapshot(db)).bookmark;
  const moment = parseMoment(timestamp);
  if (moment < Date.parse(db.created_at) - 1000) {
    throw new EngineError(400, 7500, `no bookmark at or before ${timestamp}: the database is younger`);
  }
  const lastWrite = db.writes.length > 0 ? db.writes[db.writes.length - 1] : 0;
  if (moment >= lastWrite) return (await snapshot(db)).bookmark;
  const candidates = db.snapshots.filter(
    (s) => s.takenAt <= moment && !db.writes.some((w) => w > s.takenAt && w <= moment),
  );
  if (candidates.length === 0) {
    throw new EngineError(
      400,
      7500,
      `the engine container keeps a state only when a bookmark or export is taken, and none ` +
        `matches ${timestamp}; take a bookmark (GET time_travel/bookmark) before the change`,
    );
  }
  return candidates[candidates.length - 1].bookmark;
}

async function restore(db, url) {
  let bookmark = url.searchParams.get("bookmark");
  const timestamp = url.searchParams.get("timestamp");
  if (!bookmark && timestamp) bookmark = await bookmarkAt(db, timestamp);
  if (!bookmark) throw new EngineError(400, 7400, "The request is malformed: restore needs ?bookmark= or ?timestamp=");
  const target = db.snapshots.find((s) => s.bookmark === bookmark);
  if (target === undefined) {
    const kept = db.snapshots.length;
    throw new EngineError(
      400,
      7500,
      `unknown bookmark ${bookmark} for database ${db.uuid}: the engine container keeps the ` +
        `last ${config.bookmarksPerDatabase} bookmarks per database in memory (${kept} kept now)`,
    );
  }
  const previous = await snapshot(db);
  const answer = await engine({ binding: db.binding, op: "restore", snapshot: target.state });
  if (!answer.ok) throw new EngineError(400, 7500, answer.message);
  db.writes.push(Date.now());
  const now = await snapshot(db);
  return { bookmark: now.bookmark, previous_bookmark: previous.bookmark, message: "Database restored" };
}

// --- export ---------------------------------------------------------------------------------

function dumpText(state, noData, noSchema) {
  const virtual = state.objects
    .map((o) => /^\s*CREATE\s+VIRTUAL\s+TABLE\s+\S+\s+USING\s+(\w+)/i.exec(o.sql))
    .find((m) => m !== null);
  if (virtual) throw new Error(`D1 Export error: cannot export databases with Virtual Tables (${virtual[1]})`);
  const quote = (name) => `"${name.replaceAll('"', '""')}"`;
  const inserts = (table, columns, rows, named) => {
    const target = named ? `${quote(table)}(${columns.map(quote).join(",")})` : quote(table);
    return rows.map((row) => `INSERT INTO ${target} VALUES(${row.join(",")});`);
  };
  const lines = ["PRAGMA defer_foreign_keys=TRUE;"];
  for (const table of state.tables) {
    const object = state.objects.find((o) => o.type === "table" && o.name === table.name);
    if (!noSchema) lines.push(`${object.sql.replace(/^CREATE\s+TABLE\s+/i, "CREATE TABLE IF NOT EXISTS ")};`);
    if (!noData) lines.push(...inserts(table.name, table.columns, table.rows, table.generated));
  }
  if (state.sequence !== null) {
    lines.push("DELETE FROM sqlite_sequence;");
    if (!noData) lines.push(...inserts("sqlite_sequence", ["name", "seq"], state.sequence, false));
  }
  if (!noSchema) {
    for (const o of state.objects) {
      const internal = [o.name, o.tbl_name].some((n) => /^(sqlite_|_cf_)/i.test(n ?? ""));
      if (!internal && ["index", "trigger", "view"].includes(o.type)) lines.push(`${o.sql};`);
    }
  }
  return lines.join("\n");
}

function exportAnswer(job) {
  const base = { type: "export", at_bookmark: job.bookmark };
  if (job.error) return { success: false, ...base, status: "error", error: job.error, messages: [] };
  if (job.pollsLeft > 0) {
    job.pollsLeft -= 1;
    return { success: true, ...base, status: "active", messages: ["Generating dump"] };
  }
  const signed = `http://${config.host}:${config.port}/_engine/export/${job.key}/${encodeURIComponent(job.filename)}`;
  return {
    success: true,
    ...base,
    status: "complete",
    messages: ["Export complete"],
    result: { filename: job.filename, signed_url: signed },
  };
}

async function exportDatabase(db, body) {
  const current = body.current_bookmark;
  if (current) {
    const job = exportJobs.get(`${db.uuid}/${current}`);
    if (job === undefined) throw new EngineError(400, 7500, `no export in progress at bookmark ${current}`);
    return exportAnswer(job);
  }
  const options = body.dump_options || {};
  const kept = await snapshot(db);
  const job = { key: randomBytes(16).toString("hex"), bookmark: kept.bookmark, error: "", dump: "" };
  job.filename = `${db.name}-${kept.bookmark.slice(0, 17)}.sql`;
  job.pollsLeft = config.exportPolls;
  try {
    job.dump = dumpText(kept.state, Boolean(options.no_data), Boolean(options.no_schema));
  } catch (error) {
    job.error = error.message;
  }
  exportJobs.set(`${db.uuid}/${kept.bookmark}`, job);
  if (!job.error) downloads.set(job.key, job);
  for (const map of [exportJobs, downloads]) {
    while (map.size > 64) map.delete(map.keys().next().value);
  }
  return exportAnswer(job);
}

function download(res, key) {
  const job = downloads.get(key);
  if (job === undefined || job.pollsLeft > 0) return fail(res, 404, 7404, "No such export");
  res.writeHead(200, { "content-type": "application/sql", "content-length": Buffer.byteLength(job.dump) });
  res.end(job.dump);
}

// --- databases ------------------------------------------------------------------------------

let databaseNumber = 0;

async function createDatabase(res, body) {
  const name = typeof body.name === "string" ? body.name.trim() : "";
  if (!/^[a-z0-9][a-z0-9-_]{0,63}$/i.test(name)) {
    return fail(res, 400, 7400, "The request is malformed: a database name is required (letters, digits, - and _)");
  }
  if ([...databases.values()].some((db) => db.name === name)) {
    return fail(res, 400, 7502, `A database with name '${name}' already exists`);
  }
  while (free.length === 0) await grow();
  const slot = slots[free.shift()];
  const db = {
    uuid: slot.uuid,
    name,
    created_at: new Date().toISOString(),
    version: "production",
    binding: slot.binding,
  };
  databaseNumber += 1;
  Object.defineProperties(db, {
    number: { value: databaseNumber, enumerable: false },
    writes: { value: [], enumerable: false },
    snapshots: { value: [], enumerable: false },
  });
  databases.set(db.uuid, db);
  send(res, 200, envelope(publicView(db)));
}

function listDatabases(res, url) {
  const search = (url.searchParams.get("name") || "").toLowerCase();
  const perPage = Math.min(Math.max(Number(url.searchParams.get("per_page") || "1000"), 10), 10000);
  const page = Math.max(Number(url.searchParams.get("page") || "1"), 1);
  const all = [...databases.values()].filter((db) => db.name.toLowerCase().includes(search));
  const items = all.slice((page - 1) * perPage, page * perPage).map(publicView);
  const body = envelope(items);
  body.result_info = { page, per_page: perPage, count: items.length, total_count: all.length };
  send(res, 200, body);
}

function statementsOf(body) {
  if (Array.isArray(body.batch)) {
    return body.batch.map((q) => ({ sql: String(q.sql ?? ""), params: q.params ?? [] }));
  }
  const sql = String(body.sql ?? "");
  const params = body.params ?? [];
  const parts = splitStatements(sql);
  if (parts.length <= 1) return [{ sql, params }];
  if (params.length > 0) {
    throw new Error("params can be bound only when sql holds a single statement; use batch");
  }
  return parts.map((part) => ({ sql: part, params: [] }));
}

async function query(res, db, body, raw) {
  let statements;
  try {
    statements = statementsOf(body);
  } catch (error) {
    return fail(res, 400, 7400, `The request is malformed: ${error.message}`);
  }
  const answer = await engine({ binding: db.binding, statements, raw });
  if (!answer.ok) return fail(res, 400, 7500, answer.message);
  recordWrite(db, answer.results);
  send(res, 200, envelope(answer.results));
}

async function route(req, res) {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname === "/_engine/versions") return send(res, 200, VERSIONS);
  if (url.pathname.startsWith("/_engine/export/") && req.method === "GET") {
    return download(res, url.pathname.split("/")[3]);
  }
  if (!url.pathname.startsWith("/client/v4/")) return fail(res, 404, 7000, "No route for that URI");
  if (req.headers.authorization !== `Bearer ${config.token}`) {
    return fail(res, 401, 10000, "Authentication error");
  }
  if (!url.pathname.startsWith(PREFIX)) {
    return fail(res, 403, 7403, "The given account is not valid or is not authorized to access this service");
  }
  const parts = url.pathname.slice(PREFIX.length).split("/").filter(Boolean);
  const method = req.method;
  if (parts.length === 0 && method === "GET") return listDatabases(res, url);
  if (parts.length === 0 && method === "POST") return createDatabase(res, await readJson(req));
  const db = databases.get(parts[0]);
  if (db === undefined) return fail(res, 404, 7404, `The database ${parts[0]} could not be found`);
  if (parts.length === 1 && method === "GET") return send(res, 200, envelope(publicView(db)));
  if (parts.length === 1 && method === "DELETE") {
    forget(db, db.snapshots.length);
    databases.delete(db.uuid);
    return send(res, 200, envelope(null));
  }
  if (parts.length === 2 && method === "POST" && (parts[1] === "query" || parts[1] === "raw")) {
    return query(res, db, await readJson(req), parts[1] === "raw");
  }
  const action = parts.slice(1).join("/");
  try {
    if (action === "export" && method === "POST") {
      return send(res, 200, envelope(await exportDatabase(db, await readJson(req))));
    }
    if (action === "time_travel/bookmark" && method === "GET") {
      return send(res, 200, envelope({ bookmark: await bookmarkAt(db, url.searchParams.get("timestamp")) }));
    }
    if (action === "time_travel/restore" && method === "POST") {
      return send(res, 200, envelope(await restore(db, url)));
    }
  } catch (error) {
    if (error instanceof EngineError) return fail(res, error.status, error.code, error.message);
    throw error;
  }
  return fail(res, 404, 7000, "No route for that URI");
}

async function main() {
  if (config.token === "" || config.accountId === "") {
    console.error("d1-engine: set D1_ENGINE_TOKEN and D1_ENGINE_ACCOUNT_ID");
    process.exit(2);
  }
  addSlots(config.slots);
  miniflare = new Miniflare(miniflareOptions());
  await miniflare.ready;
  const server = createServer((req, res) => {
    route(req, res).catch((error) => {
      if (error instanceof SyntaxError) return fail(res, 400, 7400, "The request is malformed: body is not JSON");
      console.error(`d1-engine: ${error.stack || error}`);
      fail(res, 500, 7500, "Internal error of the engine server");
    });
  });
  const stop = async () => {
    server.close();
    await miniflare.dispose();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  server.listen(config.port, config.host, () => {
    const v = VERSIONS;
    console.log(
      `d1-engine ready on http://${config.host}:${config.port}/client/v4 ` +
        `(wrangler ${v.wrangler}, miniflare ${v.miniflare}, workerd ${v.workerd}, SQLite ${v.sqlite})`,
    );
  });
}

main();
