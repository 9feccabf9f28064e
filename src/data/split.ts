/**
 * Splits a solution into steps on a separator (default a blank line, as ProcessBench and the
 * Qwen PRM data use). Every adapter that starts from running text goes through this one
 * function, so "what is a step" means the same thing everywhere. Segments are trimmed and
 * whitespace-only segments (runs of separators) are not steps, so they are dropped.
 */
export function splitSteps(text: string, separator = '\n\n'): string[] {
  if (separator === '') throw new Error('step separator must not be empty');
  const normalised = text.replace(/\r\n/g, '\n');
  const steps: string[] = [];
  for (const part of normalised.split(separator)) {
    const step = part.trim();
    if (step !== '') steps.push(step);
  }
  return steps;
}

/** Reads the escapes a user types on a command line ("\\n\\n") as the characters they mean. */
export function unescapeSeparator(separator: string): string {
  return separator.replace(/\\(n|r|t|\\)/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t', '\\': '\\' })[c] ?? c);
}
