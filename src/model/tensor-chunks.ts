import * as tf from '@tensorflow/tfjs';

/**
 * The data of a device tensor as host chunks of whole rows (first dimension), at most maxBytes of
 * f32 each (at least one row), read one at a time: writing a checkpoint never holds a whole
 * large tensor (a 2 GB embedding, a moment of it) on the host. With `transposed`, the rows are
 * those of the 2-D tensor's transpose (HF layout of a linear weight stored [in, out]).
 */
export async function* rowChunks(t: tf.Tensor, maxBytes: number, transposed = false): AsyncGenerator<Float32Array> {
  if (transposed && t.rank !== 2) throw new Error(`rowChunks: a transposed read needs a 2-D tensor, got rank ${t.rank}`);
  const rows: number = t.rank === 0 ? 1 : ((transposed ? t.shape[1] : t.shape[0]) as number);
  const rowItems = t.size / Math.max(rows, 1);
  const rowsPerChunk = Math.max(1, Math.floor(maxBytes / Math.max(rowItems * 4, 1)));
  if (rowsPerChunk >= rows) {
    const whole = transposed ? tf.transpose(t) : t;
    try {
      yield (await whole.data()) as Float32Array;
    } finally {
      if (whole !== t) whole.dispose();
    }
    return;
  }
  for (let start = 0; start < rows; start += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - start);
    const piece = tf.tidy(() => {
      if (transposed) return tf.transpose(t.slice([0, start], [t.shape[0], n]));
      const begin = t.shape.map((_, i) => (i === 0 ? start : 0));
      const size = t.shape.map((d, i) => (i === 0 ? n : d));
      return t.slice(begin, size);
    });
    try {
      yield (await piece.data()) as Float32Array;
    } finally {
      piece.dispose();
    }
  }
}
