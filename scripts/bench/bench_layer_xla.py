"""One decoder layer of the bench model, forward + backward, compiled by XLA's CPU JIT.

The XLA-route measurement of docs/performance.md, beside scripts/bench/bench-layer.ts (prmkit's
fused kernels on the same layer). The layer is written in TensorFlow ops as prmkit's eager path
computes it: RMSNorm, q/k/v with bias, RoPE, causal attention with a padding mask (scores
materialised, as XLA has no fused attention), o, residual, RMSNorm, SwiGLU MLP, residual.

Three variants of the same tf.function (gradients of a weighted sum of the output with respect
to the input and every weight): eager ops, a graph without XLA, and jit_compile=True. The first
call of each shape is timed apart (tracing + compilation), then the median of --repeats calls.

    python3 scripts/bench/bench_layer_xla.py [--batch 8] [--seq 256] [--repeats 10] [--shapes 256,192]

Needs a `tensorflow-cpu` wheel for this Python (TensorFlow 2.9, the library the native backend
loads, has no wheel for Python 3.11; any 2.x with XLA measures the route). Prints one JSON line
per variant and shape.
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--shapes", default="", help="more sequence lengths to compile, comma-separated")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    return ap.parse_args()


def rms_norm(x, w, eps=1e-6):
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + eps) * w


def rope(x, cos, sin):
    # x [B, T, H, D]; rotate halves as Qwen2 does
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return tf.concat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def layer(x, mask, w, cfg):
    b, t, hid = cfg["batch"], x.shape[0] // cfg["batch"], cfg["hidden"]
    nh, nkv, d = cfg["heads"], cfg["kv_heads"], hid // cfg["heads"]
    groups = nh // nkv
    pos = tf.maximum(tf.cumsum(mask, axis=1) - 1.0, 0.0)  # [B, T]
    inv = 1.0 / (10000.0 ** (tf.range(0, d, 2, dtype=tf.float32) / d))
    ang = pos[:, :, None] * inv[None, None, :]  # [B, T, D/2]
    cos, sin = tf.cos(ang)[:, :, None, :], tf.sin(ang)[:, :, None, :]
    n1 = rms_norm(x, w["in_norm"])
    q = tf.reshape(n1 @ w["q"] + w["qb"], [b, t, nh, d])
    k = tf.reshape(n1 @ w["k"] + w["kb"], [b, t, nkv, d])
    v = tf.reshape(n1 @ w["v"] + w["vb"], [b, t, nkv, d])
    q, k = rope(q, cos, sin), rope(k, cos, sin)
    q = tf.transpose(q, [0, 2, 1, 3])
    k = tf.repeat(tf.transpose(k, [0, 2, 1, 3]), groups, axis=1)
    v = tf.repeat(tf.transpose(v, [0, 2, 1, 3]), groups, axis=1)
    scores = tf.matmul(q, k, transpose_b=True) * (d ** -0.5)  # [B, H, T, T]
    causal = tf.linalg.band_part(tf.ones([t, t]), -1, 0)
    allowed = causal[None, None] * mask[:, None, None, :]
    probs = tf.nn.softmax(scores + (1.0 - allowed) * -1e9, axis=-1)
    ctx = tf.reshape(tf.transpose(probs @ v, [0, 2, 1, 3]), [b * t, nh * d])
    h = x + ctx @ w["o"]
    n2 = rms_norm(h, w["post_norm"])
    return h + (tf.nn.silu(n2 @ w["gate"]) * (n2 @ w["up"])) @ w["down"]


def main() -> None:
    args = parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    cfg = {"batch": args.batch, "hidden": args.hidden, "heads": args.heads, "kv_heads": args.kv_heads}
    hid, kv, inter = args.hidden, args.kv_heads * (args.hidden // args.heads), args.intermediate
    g = tf.random.Generator.from_seed(0)
    shapes = {"q": [hid, hid], "k": [hid, kv], "v": [hid, kv], "o": [hid, hid], "gate": [hid, inter], "up": [hid, inter], "down": [inter, hid]}
    w = {n: tf.Variable(g.normal(s) * 0.02) for n, s in shapes.items()}
    w.update({"qb": tf.Variable(tf.zeros([hid])), "kb": tf.Variable(tf.zeros([kv])), "vb": tf.Variable(tf.zeros([kv]))})
    w.update({"in_norm": tf.Variable(tf.ones([hid])), "post_norm": tf.Variable(tf.ones([hid]))})
    names = sorted(w)

    def fwd_bwd(x, mask, up):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, mask, w, cfg)
            loss = tf.reduce_sum(y * up)
        return tape.gradient(loss, [x] + [w[n] for n in names])

    variants = {
        "eager": fwd_bwd,
        "graph": tf.function(fwd_bwd),
        "xla": tf.function(fwd_bwd, jit_compile=True),
    }
    seqs = [args.seq] + [int(s) for s in args.shapes.split(",") if s]
    for seq in seqs:
        n = args.batch * seq
        x = g.normal([n, hid])
        # every row right-padded by a few tokens, as scripts/bench/bench-layer.ts does
        idx = tf.range(n, dtype=tf.float32)
        mask = tf.reshape(tf.cast(idx % seq < seq - tf.floor(idx / seq) * 3, tf.float32), [args.batch, seq])
        up = g.normal([n, hid])
        for name, fn in variants.items():
            t0 = time.perf_counter()
            out = fn(x, mask, up)
            _ = out[0].numpy()
            first = time.perf_counter() - t0
            times, cpus = [], []
            for _ in range(args.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                out = fn(x, mask, up)
                _ = out[0].numpy()
                times.append(1000 * (time.perf_counter() - t0))
                cpus.append(1000 * (time.process_time() - c0))
            print(json.dumps({
                "variant": name, "tensorflow": tf.__version__, "batch": [args.batch, seq],
                "first_call_ms": round(1000 * first, 1),
                "fwd_bwd_wall_ms": round(statistics.median(times), 2),
                "fwd_bwd_cpu_ms": round(statistics.median(cpus), 2),
                "load_average": [round(v, 2) for v in os.getloadavg()],
            }), flush=True)


if __name__ == "__main__":
    main()
