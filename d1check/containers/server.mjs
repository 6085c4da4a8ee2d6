// The D1 REST API (the subset d1check uses) over the real D1 engine: miniflare drives workerd,
// and every statement runs on a D1 binding. Databases are bindings from a pool that grows
// (by setOptions, which restarts workerd) only when every binding is taken.

import { randomUUID } from "node:crypto";
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
};
delete process.env.D1_ENGINE_TOKEN;

const PREFIX = `/client/v4/accounts/${config.accountId}/d1/database`;
const slots = []; // {binding, uuid}; the pool of D1 bindings
const free = []; // indexes into slots
const databases = new Map(); // uuid -> {uuid, name, created_at, version, binding}
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
  send(res, 200, envelope(answer.results));
}

async function route(req, res) {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname === "/_engine/versions") return send(res, 200, VERSIONS);
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
    databases.delete(db.uuid);
    return send(res, 200, envelope(null));
  }
  if (parts.length === 2 && method === "POST" && (parts[1] === "query" || parts[1] === "raw")) {
    return query(res, db, await readJson(req), parts[1] === "raw");
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
