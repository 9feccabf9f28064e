/**
 * The content of the last \boxed{...} (or \fbox{...}) with balanced braces, or undefined.
 * Used to read the gold answer of sets that only ship a worked solution (minerva_math). The
 * full answer extraction for grading lives in src/math; this copy keeps the data layer free
 * of the CAS dependency the grader loads.
 */
export function lastBoxed(text: string): string | undefined {
  const re = /\\(?:boxed|fbox)\s*\{/g;
  let start = -1;
  for (let m = re.exec(text); m; m = re.exec(text)) start = m.index + m[0].length;
  if (start < 0) return undefined;
  let depth = 1;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      i++; // an escaped brace does not open or close a group
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return text.slice(start, i).trim();
  }
  return undefined;
}
