// The Worker inside workerd: runs statements on a D1 binding, the real D1 engine.
// Request: {"binding": "DB_0", "statements": [{"sql", "params"}], "raw": false}.
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

export default {
  async fetch(request, env) {
    const { binding, statements, raw } = await request.json();
    const db = env[binding];
    if (db === undefined) {
      return Response.json({ ok: false, message: `no binding ${binding}` }, { status: 500 });
    }
    try {
      return Response.json({ ok: true, results: await run(db, statements, raw) });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return Response.json({ ok: false, message });
    }
  },
};
