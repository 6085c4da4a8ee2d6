// Splits SQL text into statements at the boundaries SQLite's sqlite3_complete() recognises
// (semicolons outside strings, comments and CREATE TRIGGER bodies).

const SEMI = 0;
const WS = 1;
const OTHER = 2;
const EXPLAIN = 3;
const CREATE = 4;
const TEMP = 5;
const TRIGGER = 6;
const END = 7;

// States: 0 invalid, 1 start, 2 normal, 3 explain, 4 create, 5 trigger, 6 semi, 7 end.
const TRANS = [
  [1, 0, 2, 3, 4, 2, 2, 2],
  [1, 1, 2, 3, 4, 2, 2, 2],
  [1, 2, 2, 2, 2, 2, 2, 2],
  [1, 3, 3, 2, 4, 2, 2, 2],
  [1, 4, 2, 2, 2, 4, 5, 2],
  [6, 5, 5, 5, 5, 5, 5, 5],
  [6, 6, 5, 5, 5, 5, 5, 7],
  [1, 7, 5, 5, 5, 5, 5, 5],
];

const KEYWORDS = new Map([
  ["explain", EXPLAIN],
  ["create", CREATE],
  ["temp", TEMP],
  ["temporary", TEMP],
  ["trigger", TRIGGER],
  ["end", END],
]);

function isIdChar(ch) {
  return /[A-Za-z0-9_$]/.test(ch) || ch.charCodeAt(0) >= 0x80;
}

function* tokens(text) {
  let i = 0;
  const n = text.length;
  while (i < n) {
    const ch = text[i];
    const start = i;
    if (ch === ";") {
      i += 1;
      yield [SEMI, start, i];
    } else if (/\s/.test(ch)) {
      while (i < n && /\s/.test(text[i])) i += 1;
      yield [WS, start, i];
    } else if (ch === "/" && text[i + 1] === "*") {
      const close = text.indexOf("*/", i + 2);
      i = close < 0 ? n : close + 2;
      yield [WS, start, i];
    } else if (ch === "-" && text[i + 1] === "-") {
      const eol = text.indexOf("\n", i);
      i = eol < 0 ? n : eol + 1;
      yield [WS, start, i];
    } else if (ch === "[") {
      const close = text.indexOf("]", i + 1);
      i = close < 0 ? n : close + 1;
      yield [OTHER, start, i];
    } else if (ch === "'" || ch === '"' || ch === "`") {
      i += 1;
      while (i < n) {
        if (text[i] === ch) {
          if (text[i + 1] === ch) {
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        i += 1;
      }
      yield [OTHER, start, i];
    } else if (isIdChar(ch)) {
      while (i < n && isIdChar(text[i])) i += 1;
      yield [KEYWORDS.get(text.slice(start, i).toLowerCase()) ?? OTHER, start, i];
    } else {
      i += 1;
      yield [OTHER, start, i];
    }
  }
}

/** Returns the statements of `text`, each from its first token to its ';' inclusive. */
export function splitStatements(text) {
  const statements = [];
  let state = 0;
  let first = -1;
  let last = -1;
  for (const [kind, start, end] of tokens(text)) {
    const before = state;
    state = TRANS[state][kind];
    if (kind === WS) continue;
    if (kind === SEMI && state === 1) {
      if (before > 1 && first >= 0) statements.push(text.slice(first, end));
      first = -1;
      continue;
    }
    if (first < 0) first = start;
    last = end;
  }
  if (first >= 0) statements.push(text.slice(first, last));
  return statements;
}
