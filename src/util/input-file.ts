/**
 * Every file prmkit reads whole on a user's say-so (a recipe and what it extends, a config.json,
 * a chat template, a tokenizer, a JSON array of data) goes through here: it must be a regular
 * file, not a directory, a device (/dev/zero never ends) or a FIFO (its open blocks until a
 * writer comes), and it is read with a size cap, so a wrong path is an error naming the file
 * instead of a process that grows without end or hangs.
 *
 * The file is opened with O_NONBLOCK (a FIFO then opens at once instead of waiting for a writer)
 * and checked through its descriptor, so what is checked is what is read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

export class InputFileError extends Error {
  override name = 'InputFileError';
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

/** Caps for the kinds of input files (bytes). */
export const INPUT_CAPS = {
  /** A recipe, a config.json, a chat template, an index of shards. */
  small: 16 * 1024 * 1024,
  /** tokenizer.json (Qwen's is 7 MB; large vocabularies reach ~30 MB). */
  tokenizer: 256 * 1024 * 1024,
} as const;

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

function reasonOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file';
  if (e.code === 'EISDIR') return 'is a directory, expected a file';
  if (e.code === 'EACCES') return 'permission denied';
  return `cannot read (${e.message})`;
}

/** Opens `path` without blocking (a FIFO opens at once) and checks it is a regular file. */
function openRegular(path: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (err) {
    throw new InputFileError(path, reasonOf(err));
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new InputFileError(path, `is ${kindOf(st)}, expected a regular file`);
  }
  return { fd, size: st.size };
}

/** Checks that `path` is a regular file (without blocking on a FIFO); returns its size. */
export async function checkRegularFile(path: string): Promise<number> {
  const { fd, size } = openRegular(path);
  closeSync(fd);
  return size;
}

/**
 * Reads a regular file of at most maxBytes. Synchronous reads: these files are small and read
 * once at start (the async form below only wraps it).
 */
export function readInputFileSync(path: string, maxBytes: number = INPUT_CAPS.small): Buffer {
  const { fd, size } = openRegular(path);
  try {
    if (size > maxBytes) throw tooLarge(path, size, maxBytes);
    // Read up to one byte past the cap: a file that grows while read is caught too.
    const buf = Buffer.allocUnsafe(Math.min(size, maxBytes) + 1);
    let got = 0;
    for (;;) {
      const n = readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
      if (got > maxBytes) throw tooLarge(path, got, maxBytes);
      if (got === buf.length) break;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** readInputFileSync for async callers. */
export async function readInputFile(path: string, maxBytes: number = INPUT_CAPS.small): Promise<Buffer> {
  return readInputFileSync(path, maxBytes);
}

/** readInputFile as UTF-8 text. */
export async function readInputText(path: string, maxBytes: number = INPUT_CAPS.small): Promise<string> {
  return (await readInputFile(path, maxBytes)).toString('utf8');
}

function tooLarge(path: string, size: number, maxBytes: number): InputFileError {
  return new InputFileError(path, `${size} bytes or more, larger than the ${maxBytes} bytes such a file may have`);
}
