// The Worker inside workerd: runs statements on a D1 binding, the real D1 engine.
// Request: {"binding": "DB_0", "statements": [{"sql", "params"}], "raw": false}, or
// {"binding", "op": "dump"} (a snapshot: schema and rows as SQL literals, read in one
// transaction) or {"binding", "op": "restore", "snapshot"} (drop everything, recreate).
// Answer: {"ok": true, "results": [...]} or {"ok": false, "message": "D1_ERROR: ..."}.

const READ_ONLY = /^\s*(select|pragma)\b/i;

async function rerun(db, query) {
  const rows = await db.prepare(query.sql).bind(...query.params).raw({ columnNames: true });
  return { columns: rows.length > 0 ? rows[0] : [], rows: rows.slice(1) };
}

// D1's batch answers rows as objects; a read-only statement is run again for its exact
// columns (duplicate names, or no rows at all).
async function asRaw(db, query, result) {
  const objects = result.results;
  let columns = objects.length > 0 ? Object.keys(objects[0]) : [];
  let rows = objects.map((row) => columns.map((name) => row[name] ?? null));
  if (READ_ONLY.test(query.sql)) {
    const again = await rerun(db, query);
    if (again.columns.length !== columns.length) rows = again.rows;
    columns = again.columns;
  }
  return { success: result.success, meta: result.meta, results: { columns, rows } };
}

async function run(db, statements, raw) {
  const prepared = statements.map((query) => db.prepare(query.sql).bind(...query.params));
  const results = await db.batch(prepared);
  if (!raw) return results;
  return Promise.all(results.map((result, i) => asRaw(db, statements[i], result)));
}

const SCHEMA = "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid";
const VIRTUAL = /^\s*CREATE\s+VIRTUAL\s+TABLE\s+\S+\s+USING\s+(\w+)/i;
const LARGE_LITERAL = 2048;

function quoteName(name) {
  return `"${String(name).replaceAll('"', '""')}"`;
}

function isInternal(object) {
  return [object.name, object.tbl_name].some((n) => /^(sqlite_|_cf_)/i.test(n ?? ""));
}

function isUserTable(object) {
  return (
    object.type === "table" &&
    !VIRTUAL.test(object.sql) &&
    !object.name.startsWith("sqlite_") &&
    !object.name.startsWith("_cf_")
  );
}

async function columnsOf(db, tables) {
  if (tables.length === 0) return [];
  const pragmas = tables.map((t) => db.prepare(`PRAGMA table_xinfo(${quoteName(t.name)})`));
  const answers = await db.batch(pragmas);
  return answers.map((answer) => {
    const all = answer.results;
    const kept = all.filter((c) => Number(c.hidden) === 0).map((c) => String(c.name));
    return { columns: kept, generated: kept.length !== all.length };
  });
}

function selectLiterals(table, columns) {
  const list = columns.map((c, i) => `quote(${quoteName(c)}) AS c${i}`).join(", ");
  return `SELECT ${list} FROM ${quoteName(table)}`;
}

// The schema is read, then re-read in the same batch (one transaction) as the rows; a schema
// that changed in between is read again.
async function dump(db) {
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const objects = (await db.prepare(SCHEMA).all()).results;
    const tables = objects.filter(isUserTable);
    const shapes = await columnsOf(db, tables);
    const hasSequence = objects.some((o) => o.name === "sqlite_sequence");
    const reads = [db.prepare(SCHEMA)];
    tables.forEach((t, i) => reads.push(db.prepare(selectLiterals(t.name, shapes[i].columns))));
    if (hasSequence) reads.push(db.prepare(selectLiterals("sqlite_sequence", ["name", "seq"])));
    const answers = await db.batch(reads);
    if (JSON.stringify(answers[0].results) !== JSON.stringify(objects)) continue;
    const rowsOf = (answer, width) =>
      answer.results.map((row) => Array.from({ length: width }, (_, i) => row[`c${i}`]));
    return {
      objects,
      tables: tables.map((t, i) => ({
        name: t.name,
        columns: shapes[i].columns,
        generated: shapes[i].generated,
        rows: rowsOf(answers[i + 1], shapes[i].columns.length),
      })),
      sequence: hasSequence ? rowsOf(answers[answers.length - 1], 2) : null,
    };
  }
  throw new Error("D1_ERROR: the schema kept changing while it was read; try again");
}

function hexBytes(hex) {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

// A long literal becomes a bound parameter, so no statement reaches D1's length limit.
function insertOf(db, table, columns, literals) {
  const params = [];
  const values = literals.map((literal) => {
    if (literal.length <= LARGE_LITERAL) return literal;
    if (literal.startsWith("X'")) params.push(hexBytes(literal.slice(2, -1)));
    else if (literal.startsWith("'")) params.push(literal.slice(1, -1).replaceAll("''", "'"));
    else return literal;
    return "?";
  });
  const names = columns.map(quoteName).join(",");
  const sql = `INSERT INTO ${quoteName(table)}(${names}) VALUES(${values.join(",")})`;
  return db.prepare(sql).bind(...params);
}

function usesAutoincrement(object) {
  return object.type === "table" && /\bAUTOINCREMENT\b/i.test(object.sql);
}

async function restore(db, snapshot) {
  const all = (await db.prepare(SCHEMA).all()).results;
  const current = all.filter((o) => !isInternal(o));
  const objects = snapshot.objects.filter((o) => !isInternal(o));
  const virtual = [...current, ...objects].find((o) => VIRTUAL.test(o.sql ?? ""));
  if (virtual !== undefined) {
    throw new Error(
      `D1_ERROR: the engine container cannot restore databases with virtual tables ` +
        `(${virtual.name} uses ${VIRTUAL.exec(virtual.sql)[1]}); restore is supported only ` +
        "for plain tables, indexes, triggers and views",
    );
  }
  const steps = ["PRAGMA defer_foreign_keys = TRUE"];
  const drop = { view: "VIEW", trigger: "TRIGGER", index: "INDEX" };
  for (const kind of ["view", "trigger", "index"]) {
    for (const o of current.filter((x) => x.type === kind).reverse()) {
      steps.push(`DROP ${drop[kind]} IF EXISTS ${quoteName(o.name)}`);
    }
  }
  for (const o of current.filter(isUserTable).reverse()) {
    steps.push(`DROP TABLE IF EXISTS ${quoteName(o.name)}`);
  }
  const statements = steps.map((sql) => db.prepare(sql));
  const later = (o) => o.type === "trigger";
  for (const o of objects) {
    if (!later(o)) statements.push(db.prepare(o.sql));
  }
  for (const table of snapshot.tables) {
    for (const row of table.rows) statements.push(insertOf(db, table.name, table.columns, row));
  }
  if (all.some((o) => o.name === "sqlite_sequence") || objects.some(usesAutoincrement)) {
    statements.push(db.prepare("DELETE FROM sqlite_sequence"));
    for (const row of snapshot.sequence ?? []) {
      statements.push(insertOf(db, "sqlite_sequence", ["name", "seq"], row));
    }
  }
  for (const o of objects.filter(later)) statements.push(db.prepare(o.sql));
  await db.batch(statements);
}

async function handle(db, body) {
  if (body.op === "dump") return dump(db);
  if (body.op === "restore") return restore(db, body.snapshot);
  return run(db, body.statements, body.raw);
}

export default {
  async fetch(request, env) {
    const body = await request.json();
    const db = env[body.binding];
    if (db === undefined) {
      return Response.json({ ok: false, message: `no binding ${body.binding}` }, { status: 500 });
    }
    try {
      return Response.json({ ok: true, results: await handle(db, body) });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return Response.json({ ok: false, message });
    }
  },
};
