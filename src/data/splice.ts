/**
 * Sets top-level fields of a JSON object given as text and leaves every other byte as written.
 * Commands that add a field to each input line (score, grade) use it so that what they did not
 * touch passes through unchanged: re-serialising a parsed line would turn 1e999 into null,
 * 0.10000000000000001 into 0.1 and big integers into rounded ones.
 *
 * The text must be one valid JSON object (callers splice lines JSON.parse has accepted).
 * A field that exists is replaced where it stands (every occurrence, if the line repeats the
 * key); a new one is appended before the closing brace.
 */
export function spliceJsonFields(objectText: string, fields: Record<string, unknown>): string {
  const members = topLevelMembers(objectText);
  const edits: { start: number; end: number; text: string }[] = [];
  const appended: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    const json = JSON.stringify(value);
    if (json === undefined) throw new Error(`field "${key}": cannot be written as JSON`);
    const spans = members.members.filter((m) => m.key === key);
    if (spans.length === 0) appended.push(`${JSON.stringify(key)}:${json}`);
    for (const m of spans) edits.push({ start: m.valueStart, end: m.valueEnd, text: json });
  }
  if (appended.length > 0) {
    const text = (members.members.length > 0 ? ',' : '') + appended.join(',');
    edits.push({ start: members.close, end: members.close, text });
  }
  edits.sort((a, b) => b.start - a.start);
  let out = objectText;
  for (const e of edits) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}

interface Member {
  key: string;
  valueStart: number;
  valueEnd: number;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** Keys and value spans of the top-level object, and the index of its closing brace. */
function topLevelMembers(text: string): { members: Member[]; close: number } {
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  };
  const expect = (ch: string): void => {
    if (text[i] !== ch) throw new Error(`spliceJsonFields: expected "${ch}" at offset ${i}`);
    i++;
  };
  skipSpace();
  expect('{');
  const members: Member[] = [];
  skipSpace();
  if (text[i] === '}') return { members, close: i };
  for (;;) {
    skipSpace();
    const keyStart = i;
    i = stringEnd(text, i);
    const key = JSON.parse(text.slice(keyStart, i)) as string;
    skipSpace();
    expect(':');
    skipSpace();
    const valueStart = i;
    i = valueEnd(text, i);
    members.push({ key, valueStart, valueEnd: i });
    skipSpace();
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (text[i] === '}') return { members, close: i };
    throw new Error(`spliceJsonFields: expected "," or "}" at offset ${i}`);
  }
}

/** Index just past the string starting at `start` (which holds its opening quote). */
function stringEnd(text: string, start: number): number {
  if (text.charCodeAt(start) !== 0x22) throw new Error(`spliceJsonFields: expected a string at offset ${start}`);
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) i++;
    else if (c === 0x22) return i + 1;
  }
  throw new Error('spliceJsonFields: unterminated string');
}

/** Index just past the JSON value starting at `start`. */
function valueEnd(text: string, start: number): number {
  const c = text.charCodeAt(start);
  if (c === 0x22) return stringEnd(text, start);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let i = start; i < text.length; i++) {
      const d = text.charCodeAt(i);
      if (d === 0x22) i = stringEnd(text, i) - 1;
      else if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        if (--depth === 0) return i + 1;
      }
    }
    throw new Error('spliceJsonFields: unbalanced brackets');
  }
  // number, true, false, null: up to the next delimiter
  let i = start;
  while (i < text.length) {
    const d = text.charCodeAt(i);
    if (d === 0x2c || d === 0x7d || d === 0x5d || isSpace(d)) break;
    i++;
  }
  return i;
}
