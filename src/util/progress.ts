import cliProgress from 'cli-progress';

export interface Progress {
  tick(n?: number, payload?: Record<string, string | number>): void;
  setTotal(total: number): void;
  stop(): void;
}

/**
 * A progress bar with ETA on stderr (so stdout stays clean for piping). On a non-TTY stderr
 * (CI, logs) it prints a plain line every few seconds instead of redrawing.
 */
export function progressBar(label: string, total: number, opts: { enabled?: boolean } = {}): Progress {
  const enabled = opts.enabled ?? !process.env.PRMKIT_NO_PROGRESS;
  if (!enabled) return { tick() {}, setTotal() {}, stop() {} };
  if (!process.stderr.isTTY) return plainProgress(label, total);
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% {value}/{total} | ETA {eta_formatted} | {rate}/s {info}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const start = Date.now();
  let value = 0;
  bar.start(total, 0, { rate: '0', info: '' });
  return {
    tick(n = 1, payload = {}) {
      value += n;
      const rate = (value / Math.max(1e-3, (Date.now() - start) / 1000)).toFixed(1);
      bar.update(value, { rate, info: formatPayload(payload) });
    },
    setTotal(t) {
      bar.setTotal(t);
    },
    stop() {
      bar.stop();
    },
  };
}

function plainProgress(label: string, initialTotal: number): Progress {
  const start = Date.now();
  let total = initialTotal;
  let value = 0;
  let lastPrint = 0;
  let info = '';
  let printedValue = -1;
  const print = (force: boolean) => {
    const now = Date.now();
    if (!force && now - lastPrint < 5000) return;
    if (force && printedValue === value) return; // the last line already said it
    lastPrint = now;
    printedValue = value;
    const elapsed = (now - start) / 1000;
    const rate = value / Math.max(1e-3, elapsed);
    const eta = rate > 0 && total > value ? ((total - value) / rate).toFixed(0) : '0';
    process.stderr.write(`${label}: ${value}/${total} (${rate.toFixed(1)}/s, ETA ${eta}s)${info ? ` ${info}` : ''}\n`);
  };
  return {
    tick(n = 1, payload = {}) {
      value += n;
      // The latest payload (loss, lr, ...) rides on the next printed line, as on the TTY bar.
      if (Object.keys(payload).length > 0) info = formatPayload(payload);
      print(false);
    },
    setTotal(t) {
      total = t;
    },
    stop() {
      print(true);
    },
  };
}

function formatPayload(payload: Record<string, string | number>): string {
  return Object.entries(payload)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toPrecision(4) : v}`)
    .join(' ');
}
