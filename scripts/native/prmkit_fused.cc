/**
 * prmkit's fused decoder kernels, registered as TensorFlow ops through TensorFlow's C kernel API
 * (tensorflow/c/ops.h, tensorflow/c/kernels.h) when the tfjs-node binding loads. They run in
 * the binding's eager context like any TF op (executeOp by name); src/backend/fused/ wraps them
 * as tfjs kernels with gradients. Copied into binding/ and compiled by scripts/setup-native.
 *
 *   PrmkitAttention(q [B,T,H,D], k [B,T,Hk,D], v [B,T,Hk,D], mask [B,T])
 *       -> out [B,T,H,D], lse [B,H,T]
 *   PrmkitAttentionGrad(q, k, v, mask, out, lse, dout) -> dq, dk, dv
 *   PrmkitRopeAttention(q, k, v, mask, cos [B,T,D/2], sin [B,T,D/2]; scale) -> out, lse
 *       the same with q and k before RoPE (applied here, q scaled by `scale`)
 *   PrmkitRopeAttentionGrad(q, k, v, mask, cos, sin, out, lse, dout; scale) -> dq, dk, dv
 *   PrmkitRopeAttentionRows(q [N,H,D], k, v, mask, cos, sin, rows [N]; scale) -> out [N,H,D], lse [N,H]
 *       the same output at N query positions only (rows: flat b*T + t)
 *   PrmkitRopeAttentionRowsGrad(q, k, v, mask, cos, sin, rows, out, lse, dout; scale) -> dq, dk, dv
 *   PrmkitRmsNorm(x [N,C], w [C]; eps) -> y [N,C], rstd [N]
 *   PrmkitRmsNormGrad(dy, x, w, rstd) -> dx, dw
 *   PrmkitAddRmsNorm(x, r, w; eps) -> sum = x + r, y = RMSNorm(sum), rstd    the residual add and the norm
 *   PrmkitAddRmsNormGrad(dsum, dy, sum, w, rstd) -> dx (of x and of r), dw
 *   PrmkitSwiGlu(gate, up) -> silu(gate) * up
 *   PrmkitSwiGluGrad(dy, gate, up) -> dgate, dup
 *   PrmkitAdamWInPlace(p, m, v, g; scalars) -> p'    one parameter's AdamW update, one pass; m, v in place
 *   PrmkitCopyIntoInPlace(dst, src; dst_offset, src_offset, length)    a run of src's values over dst's, in place
 *   PrmkitSumSquares(x: N tensors) -> sum []    the sum of squares of all their elements
 *   PrmkitDropout(x, key [4]; rate) -> y    inverted dropout, its mask a pure function of key and position
 *
 * Attention is causal with a key padding mask (query i sees key j iff j <= i and mask[b, j] > 0)
 * and grouped-query heads (query head h reads kv head h / (H / Hk)); q arrives already scaled
 * by 1/sqrt(D) (the decoder folds the scale into RoPE). It never forms a [B,H,T,T] tensor: each
 * (batch, head) task walks the queries in blocks of kBlock rows, computes that block's scores
 * against the keys it may see (a kBlock x T scratch per thread), and keeps only the row
 * log-sum-exp; the backward recomputes the probabilities from it (flash-attention style). A row
 * that may see no key (a left-padded position) gets a zero output and no gradient.
 *
 * Matrix products are Eigen's (header-only, shipped in the wheel); work is spread over a small
 * thread pool (PRMKIT_FUSED_THREADS, default: hardware threads) by (batch, head) or row ranges.
 */

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#define EIGEN_NO_DEBUG 1
#include <Eigen/Core>

#include <node_api.h>

#include "tensorflow/c/kernels.h"
#include "tensorflow/c/ops.h"
#include "tensorflow/c/tf_status.h"
#include "tensorflow/c/tf_tensor.h"

namespace prmkit_fused {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Strided = Eigen::OuterStride<>;
using ConstMap = Eigen::Map<const RowMajor, 0, Strided>;
using MutMap = Eigen::Map<RowMajor, 0, Strided>;

constexpr int64_t kBlock = 64;

// --- thread pool ---------------------------------------------------------------------------

// Jobs smaller than this (element operations) run serially: about a millisecond of work.
constexpr double kSerialWork = 1 << 20;

class Pool {
 public:
  Pool() {
    int n = static_cast<int>(std::thread::hardware_concurrency());
    if (const char *env = std::getenv("PRMKIT_FUSED_THREADS")) n = std::atoi(env);
    if (n < 1) n = 1;
    for (int i = 1; i < n; i++) workers_.emplace_back([this] { Loop(); });
    size_ = n;
  }
  int size() const { return size_; }

  // Runs fn(i) for i in [0, n); the calling thread takes part and returns once every index has
  // run. It never waits for a worker that has not started: on a busy machine a sleeping
  // worker may wake milliseconds late, and then finds the job drained (it holds its own
  // reference to the job, so that is safe).
  //
  // `work` estimates the whole job in element operations: below kSerialWork it runs on the
  // calling thread alone, since waking a worker (and, on a busy machine, waiting for one that
  // was descheduled) costs more than a small job; forward passes over short sequences are
  // made of such jobs.
  void For(int64_t n, const std::function<void(int64_t)> &fn, double work = 1e18) {
    if (n <= 0) return;
    if (size_ == 1 || n == 1 || work < kSerialWork) {
      for (int64_t i = 0; i < n; i++) fn(i);
      return;
    }
    std::lock_guard<std::mutex> job_lock(job_mu_);  // one job at a time
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->n = n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = job;
      generation_++;
    }
    cv_.notify_all();
    Run(*job);
    std::unique_lock<std::mutex> lock(job->mu);
    job->cv.wait(lock, [&] { return job->done.load() == n; });
  }

 private:
  struct Job {
    const std::function<void(int64_t)> *fn = nullptr;
    int64_t n = 0;
    std::atomic<int64_t> next{0}, done{0};
    std::mutex mu;
    std::condition_variable cv;
  };
  static void Run(Job &job) {
    for (int64_t i; (i = job.next.fetch_add(1)) < job.n;) {
      (*job.fn)(i);
      if (job.done.fetch_add(1) + 1 == job.n) {
        std::lock_guard<std::mutex> lock(job.mu);
        job.cv.notify_all();
      }
    }
  }
  void Loop() {
    uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        job = job_;
      }
      if (job) Run(*job);
    }
  }
  std::vector<std::thread> workers_;
  std::mutex mu_, job_mu_;
  std::condition_variable cv_;
  std::shared_ptr<Job> job_;
  uint64_t generation_ = 0;
  int size_ = 1;
};

Pool &ThePool() {
  static Pool *pool = new Pool();  // never destroyed: its workers sleep until the process exits
  return *pool;
}

// Splits [0, n) into about 4 chunks per thread; `cost` is the work of one index (element
// operations), which decides whether the job is worth spreading at all.
template <typename F>
void ParallelRanges(int64_t n, double cost, F &&body) {
  const int64_t min_chunk = std::max<int64_t>(1, static_cast<int64_t>(kSerialWork / 8 / std::max(cost, 1.0)));
  int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(ThePool().size() * 4, n / min_chunk));
  int64_t per = (n + chunks - 1) / chunks;
  ThePool().For(chunks, [&](int64_t c) {
    int64_t s = c * per, e = std::min(n, s + per);
    if (s < e) body(s, e);
  }, n * cost);
}

// --- kernel plumbing -----------------------------------------------------------------------

struct Inputs {
  std::vector<TF_Tensor *> t;
  ~Inputs() {
    for (auto *x : t) TF_DeleteTensor(x);
  }
};

bool Fail(TF_OpKernelContext *ctx, const std::string &msg) {
  TF_Status *s = TF_NewStatus();
  TF_SetStatus(s, TF_INVALID_ARGUMENT, msg.c_str());
  TF_OpKernelContext_Failure(ctx, s);
  TF_DeleteStatus(s);
  return false;
}

bool GetInputs(TF_OpKernelContext *ctx, Inputs &in, const char *op) {
  int n = TF_NumInputs(ctx);
  TF_Status *s = TF_NewStatus();
  for (int i = 0; i < n; i++) {
    TF_Tensor *t = nullptr;
    TF_GetInput(ctx, i, &t, s);
    if (TF_GetCode(s) != TF_OK) {
      TF_OpKernelContext_Failure(ctx, s);
      TF_DeleteStatus(s);
      return false;
    }
    in.t.push_back(t);
    if (TF_TensorType(t) != TF_FLOAT) {
      TF_DeleteStatus(s);
      return Fail(ctx, std::string(op) + ": input " + std::to_string(i) + " must be float32");
    }
  }
  TF_DeleteStatus(s);
  return true;
}

std::vector<int64_t> Dims(const TF_Tensor *t) {
  std::vector<int64_t> d(TF_NumDims(t));
  for (size_t i = 0; i < d.size(); i++) d[i] = TF_Dim(t, static_cast<int>(i));
  return d;
}

std::string ShapeString(const std::vector<int64_t> &d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); i++) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

const float *Data(const TF_Tensor *t) { return static_cast<const float *>(TF_TensorData(t)); }

// Allocates output i; the caller owns the returned tensor (TF_DeleteTensor after filling).
float *Output(TF_OpKernelContext *ctx, int i, const std::vector<int64_t> &dims, TF_Tensor **out) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  TF_Status *s = TF_NewStatus();
  *out = TF_AllocateOutput(ctx, i, TF_FLOAT, dims.data(), static_cast<int>(dims.size()), n * sizeof(float), s);
  bool ok = TF_GetCode(s) == TF_OK;
  if (!ok) TF_OpKernelContext_Failure(ctx, s);
  TF_DeleteStatus(s);
  return ok ? static_cast<float *>(TF_TensorData(*out)) : nullptr;
}

struct Outputs {
  std::vector<TF_Tensor *> t;
  ~Outputs() {
    for (auto *x : t) if (x) TF_DeleteTensor(x);
  }
  float *Add(TF_OpKernelContext *ctx, const std::vector<int64_t> &dims) {
    TF_Tensor *o = nullptr;
    float *p = Output(ctx, static_cast<int>(t.size()), dims, &o);
    t.push_back(o);
    return p;
  }
};

// Reads float attribute `name` into *val; a missing one fails the kernel's construction.
bool GetFloatAttr(TF_OpKernelConstruction *ctx, const char *name, float *val) {
  TF_Status *s = TF_NewStatus();
  TF_OpKernelConstruction_GetAttrFloat(ctx, name, val, s);
  const bool ok = TF_GetCode(s) == TF_OK;
  if (!ok) TF_OpKernelConstruction_Failure(ctx, s);
  TF_DeleteStatus(s);
  return ok;
}

void *NoState(TF_OpKernelConstruction *) { return nullptr; }
void NoDelete(void *) {}

// --- attention -----------------------------------------------------------------------------

struct AttnShape {
  int64_t B, T, H, Hk, D, groups;
};

bool CheckAttention(TF_OpKernelContext *ctx, const Inputs &in, AttnShape &s) {
  auto q = Dims(in.t[0]), k = Dims(in.t[1]), v = Dims(in.t[2]), m = Dims(in.t[3]);
  if (q.size() != 4 || k.size() != 4 || v != k || m.size() != 2 || k[0] != q[0] || k[1] != q[1] ||
      k[3] != q[3] || m[0] != q[0] || m[1] != q[1] || k[2] < 1 || q[2] % k[2] != 0) {
    return Fail(ctx, "PrmkitAttention: expected q [B,T,H,D], k and v [B,T,Hk,D] with H a multiple of Hk, mask [B,T]; got q " +
                         ShapeString(q) + ", k " + ShapeString(k) + ", v " + ShapeString(v) + ", mask " + ShapeString(m));
  }
  s = {q[0], q[1], q[2], k[2], q[3], q[2] / k[2]};
  return true;
}

// The keys a batch row's queries may see. Masks are almost always one run of ones [lo, hi) (left
// or right padding, or none): then a query block reads keys [lo, min(r1, hi)) only and needs no
// per-key test. Any other mask (dense = false) takes keys [0, r1) and tests each one.
struct KeyRun {
  int64_t lo, hi;
  bool dense;
};

std::vector<KeyRun> KeyRuns(const float *mask, int64_t B, int64_t T) {
  std::vector<KeyRun> runs(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; b++) {
    const float *m = mask + b * T;
    int64_t lo = 0, hi = T;
    while (lo < T && !(m[lo] > 0.f)) lo++;
    while (hi > lo && !(m[hi - 1] > 0.f)) hi--;
    bool dense = true;
    for (int64_t j = lo; j < hi && dense; j++) dense = m[j] > 0.f;
    runs[static_cast<size_t>(b)] = dense ? KeyRun{lo, hi, true} : KeyRun{0, T, false};
  }
  return runs;
}

// A thread's scratch matrix, grown and never shrunk. Resizing an Eigen matrix per task would
// allocate per task, and blocks of 64 x T floats are past glibc's mmap threshold: each would be a
// fresh mapping with its page faults.
using ScratchMap = Eigen::Map<RowMajor, Eigen::Aligned64>;

ScratchMap Scratch(int slot, int64_t rows, int64_t cols) {
  thread_local RowMajor bufs[3];
  auto &buf = bufs[slot];
  if (buf.size() < rows * cols) buf.resize(rows * cols, 1);
  return ScratchMap(buf.data(), rows, cols);
}

// Row i of a score block over keys [k0, k0 + cols) for query position `pos`: the count of keys
// it may see from k0 on (keys past the query are the future), after setting padded keys among
// them to -inf when the mask is not one run.
inline int64_t LiveKeys(float *row, int64_t cols, int64_t k0, int64_t pos, const float *mrow, bool dense) {
  const int64_t live = std::max<int64_t>(0, std::min(cols, pos + 1 - k0));
  if (!dense) {
    const float neg = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < live; j++) {
      if (!(mrow[k0 + j] > 0.f)) row[j] = neg;
    }
  }
  return live;
}

// Probabilities of padded keys are exactly 0.
inline void ZeroMasked(float *row, int64_t n, const float *mask_row) {
  for (int64_t j = 0; j < n; j++) {
    if (!(mask_row[j] > 0.f)) row[j] = 0.f;
  }
}

// out [B,T,H,D] and lse [B,H,T] of attention over q, k, v (q scaled, RoPE applied).
void AttentionForward(const AttnShape &s, const float *q, const float *k, const float *v, const float *mask, float *out,
                      float *lse) {
  const int64_t T = s.T, D = s.D, H = s.H, Hk = s.Hk;
  const int64_t nblocks = (T + kBlock - 1) / kBlock;
  const auto runs = KeyRuns(mask, s.B, T);
  const float neg = -std::numeric_limits<float>::infinity();
  // Tasks: (batch, head, query block), larger blocks (later rows, more keys) first.
  const int64_t tasks = s.B * H * nblocks;
  const double work = static_cast<double>(s.B) * H * T * T * D;  // about the score and context products
  ThePool().For(tasks, [&](int64_t task) {
    const int64_t blk = nblocks - 1 - task % nblocks;
    const int64_t bh = task / nblocks, b = bh / H, h = bh % H, hk = h / s.groups;
    const int64_t r0 = blk * kBlock, r1 = std::min(T, r0 + kBlock), rows = r1 - r0;
    const KeyRun &run = runs[static_cast<size_t>(b)];
    const int64_t k0 = run.lo, cols = std::max<int64_t>(0, std::min(r1, run.hi) - k0);
    const float *mrow = mask + b * T;
    MutMap O(out + ((b * T + r0) * H + h) * D, rows, D, Strided(H * D));
    float *L = lse + (b * H + h) * T + r0;
    if (cols == 0) {  // no query of the block sees a key
      O.setZero();
      std::fill(L, L + rows, neg);
      return;
    }
    ConstMap Q(q + ((b * T + r0) * H + h) * D, rows, D, Strided(H * D));
    ConstMap K(k + ((b * T + k0) * Hk + hk) * D, cols, D, Strided(Hk * D));
    ConstMap V(v + ((b * T + k0) * Hk + hk) * D, cols, D, Strided(Hk * D));
    ScratchMap S = Scratch(0, rows, cols);
    S.noalias() = Q * K.transpose();
    for (int64_t i = 0; i < rows; i++) {
      Eigen::Map<Eigen::ArrayXf> row(S.data() + i * cols, cols);
      const int64_t live = LiveKeys(row.data(), cols, k0, r0 + i, mrow, run.dense);
      const float m = live > 0 ? row.head(live).maxCoeff() : neg;
      if (m == neg) {  // sees no key
        row.setZero();
        L[i] = neg;
        continue;
      }
      auto p = row.head(live);
      p = (p - m).exp();
      row.tail(cols - live).setZero();
      if (!run.dense) ZeroMasked(row.data(), live, mrow + k0);  // Eigen's exp(-inf) is ~1e-38, not 0
      const float sum = p.sum();
      p *= 1.f / sum;
      L[i] = m + std::log(sum);
    }
    O.noalias() = S * V;
  }, work);
}

void AttentionCompute(void *, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitAttention")) return;
  AttnShape s;
  if (!CheckAttention(ctx, in, s)) return;
  Outputs outs;
  float *out = outs.Add(ctx, {s.B, s.T, s.H, s.D});
  float *lse = out ? outs.Add(ctx, {s.B, s.H, s.T}) : nullptr;
  if (!lse) return;
  AttentionForward(s, Data(in.t[0]), Data(in.t[1]), Data(in.t[2]), Data(in.t[3]), out, lse);
}

// dq, dk, dv of the attention from its inputs, output, lse and the output's gradient.
void AttentionBackward(const AttnShape &s, const float *q, const float *k, const float *v, const float *mask,
                       const float *out, const float *lse, const float *dout, float *dq, float *dk, float *dv) {
  const int64_t T = s.T, D = s.D, H = s.H, Hk = s.Hk, B = s.B;
  // Tasks own disjoint dK/dV rows: (batch, kv head) when that gives every thread a few tasks,
  // writing dk/dv directly; else (batch, head) into per-head scratch [B, H, T, D] summed over
  // each group at the end (few batch rows and kv heads on many cores).
  const bool direct = s.groups == 1 || B * Hk >= 4 * ThePool().size();
  std::vector<float> dk_h, dv_h;
  if (!direct) {
    dk_h.assign(static_cast<size_t>(B * H * T * D), 0.f);
    dv_h.assign(static_cast<size_t>(B * H * T * D), 0.f);
  } else {
    std::memset(dk, 0, sizeof(float) * B * T * Hk * D);
    std::memset(dv, 0, sizeof(float) * B * T * Hk * D);
  }
  const int64_t nblocks = (T + kBlock - 1) / kBlock;
  const int64_t heads_per_task = direct ? s.groups : 1;
  const auto runs = KeyRuns(mask, B, T);
  const double work = 2.5 * B * H * T * T * D;  // five products, causal half
  ThePool().For(direct ? B * Hk : B * H, [&](int64_t task) {
    const int64_t b = direct ? task / Hk : task / H;
    const int64_t h0 = direct ? (task % Hk) * s.groups : task % H;
    const int64_t hk = h0 / s.groups;
    const KeyRun &run = runs[static_cast<size_t>(b)];
    const float *mrow = mask + b * T;
    ConstMap Kall(k + (b * T * Hk + hk) * D, T, D, Strided(Hk * D));
    ConstMap Vall(v + (b * T * Hk + hk) * D, T, D, Strided(Hk * D));
    float *dk_base = direct ? dk + (b * T * Hk + hk) * D : dk_h.data() + (b * H + h0) * T * D;
    float *dv_base = direct ? dv + (b * T * Hk + hk) * D : dv_h.data() + (b * H + h0) * T * D;
    const int64_t stride = direct ? Hk * D : D;
    MutMap dK(dk_base, T, D, Strided(stride)), dV(dv_base, T, D, Strided(stride));
    thread_local Eigen::VectorXf Drow;
    for (int64_t h = h0; h < h0 + heads_per_task; h++) {
      for (int64_t blk = 0; blk < nblocks; blk++) {
        const int64_t r0 = blk * kBlock, r1 = std::min(T, r0 + kBlock), rows = r1 - r0;
        const int64_t k0 = run.lo, cols = std::max<int64_t>(0, std::min(r1, run.hi) - k0);
        const int64_t off = ((b * T + r0) * H + h) * D;
        MutMap dQ(dq + off, rows, D, Strided(H * D));
        if (cols == 0) {
          dQ.setZero();
          continue;
        }
        ConstMap Q(q + off, rows, D, Strided(H * D));
        ConstMap O(out + off, rows, D, Strided(H * D));
        ConstMap dO(dout + off, rows, D, Strided(H * D));
        auto K = Kall.middleRows(k0, cols);
        auto V = Vall.middleRows(k0, cols);
        const float *L = lse + (b * H + h) * T + r0;
        ScratchMap P = Scratch(0, rows, cols);
        P.noalias() = Q * K.transpose();
        for (int64_t i = 0; i < rows; i++) {
          Eigen::Map<Eigen::ArrayXf> row(P.data() + i * cols, cols);
          const int64_t live = LiveKeys(row.data(), cols, k0, r0 + i, mrow, run.dense);
          if (live == 0 || L[i] == -std::numeric_limits<float>::infinity()) {
            row.setZero();
            continue;
          }
          row.head(live) = (row.head(live) - L[i]).exp();
          row.tail(cols - live).setZero();
          if (!run.dense) ZeroMasked(row.data(), live, mrow + k0);
        }
        ScratchMap dP = Scratch(1, rows, cols);
        dP.noalias() = dO * V.transpose();
        Drow = (dO.array() * O.array()).rowwise().sum();
        dP.array() = P.array() * (dP.array().colwise() - Drow.array());  // dS
        dV.middleRows(k0, cols).noalias() += P.transpose() * dO;
        dQ.noalias() = dP * K;
        dK.middleRows(k0, cols).noalias() += dP.transpose() * Q;
      }
    }
  }, work);
  if (direct) return;
  // Sum the group's heads into dk, dv [B, T, Hk, D].
  ParallelRanges(B * T, 2.0 * Hk * s.groups * D, [&](int64_t s0, int64_t s1) {
    for (int64_t bt = s0; bt < s1; bt++) {
      const int64_t b = bt / T, t = bt % T;
      for (int64_t hk = 0; hk < Hk; hk++) {
        Eigen::Map<Eigen::ArrayXf> dkr(dk + (bt * Hk + hk) * D, D), dvr(dv + (bt * Hk + hk) * D, D);
        dkr.setZero();
        dvr.setZero();
        for (int64_t g = 0; g < s.groups; g++) {
          const int64_t h = hk * s.groups + g;
          dkr += Eigen::Map<const Eigen::ArrayXf>(dk_h.data() + ((b * H + h) * T + t) * D, D);
          dvr += Eigen::Map<const Eigen::ArrayXf>(dv_h.data() + ((b * H + h) * T + t) * D, D);
        }
      }
    }
  });
}

bool CheckGradInputs(TF_OpKernelContext *ctx, const Inputs &in, const AttnShape &s, int out_i, int lse_i, int dout_i,
                     const char *op) {
  if (Dims(in.t[out_i]) != Dims(in.t[0]) || Dims(in.t[dout_i]) != Dims(in.t[0]) ||
      Dims(in.t[lse_i]) != std::vector<int64_t>{s.B, s.H, s.T}) {
    return Fail(ctx, std::string(op) + ": out and dout must be shaped like q, lse [B,H,T]");
  }
  return true;
}

void AttentionGradCompute(void *, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitAttentionGrad")) return;
  AttnShape s;
  if (!CheckAttention(ctx, in, s) || !CheckGradInputs(ctx, in, s, 4, 5, 6, "PrmkitAttentionGrad")) return;
  Outputs outs;
  float *dq = outs.Add(ctx, {s.B, s.T, s.H, s.D});
  float *dk = dq ? outs.Add(ctx, {s.B, s.T, s.Hk, s.D}) : nullptr;
  float *dv = dk ? outs.Add(ctx, {s.B, s.T, s.Hk, s.D}) : nullptr;
  if (!dv) return;
  AttentionBackward(s, Data(in.t[0]), Data(in.t[1]), Data(in.t[2]), Data(in.t[3]), Data(in.t[4]), Data(in.t[5]),
                    Data(in.t[6]), dq, dk, dv);
}

// --- attention with RoPE -------------------------------------------------------------------
//
// PrmkitRopeAttention(q, k, v, mask, cos [B,T,D/2], sin [B,T,D/2]; scale) takes q and k before
// the rotary embedding (rotate_half form: x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin over the
// two halves of each head) and folds `scale` into q, so the decoder's per-head rotation ops
// (split, concat, products, sums, and their gradients) become one pass here. The backward
// rotates dq and dk back (the transpose of the rotation).

struct RopeState {
  float scale;
};

void *RopeCreate(TF_OpKernelConstruction *ctx) {
  auto *st = new RopeState{1.f};
  GetFloatAttr(ctx, "scale", &st->scale);
  return st;
}
void RopeDelete(void *p) { delete static_cast<RopeState *>(p); }

bool CheckRope(TF_OpKernelContext *ctx, const Inputs &in, const AttnShape &s, const char *op) {
  const std::vector<int64_t> want{s.B, s.T, s.D / 2};
  if (s.D % 2 != 0 || Dims(in.t[4]) != want || Dims(in.t[5]) != want) {
    return Fail(ctx, std::string(op) + ": expected an even head size and cos, sin [B,T,D/2]; got cos " + ShapeString(Dims(in.t[4])) +
                         ", sin " + ShapeString(Dims(in.t[5])));
  }
  return true;
}

// The RoPE kernels also take q [B*T, H*D], k and v [B*T, Hk*D]: the projections as the decoder
// computes them, the same memory as [B,T,heads,D], so that no reshape op runs before and after
// each layer's attention. B and T come from the mask, D from cos [B,T,D/2]. `flat` says which
// layout the inputs had, for the outputs.
bool CheckRopeInputs(TF_OpKernelContext *ctx, const Inputs &in, AttnShape &s, bool &flat, const char *op) {
  auto q = Dims(in.t[0]), k = Dims(in.t[1]), v = Dims(in.t[2]), m = Dims(in.t[3]), c = Dims(in.t[4]);
  flat = q.size() == 2;
  if (!flat) return CheckAttention(ctx, in, s) && CheckRope(ctx, in, s, op);
  const int64_t D = c.size() == 3 ? 2 * c[2] : 0;
  if (m.size() != 2 || c.size() != 3 || c[0] != m[0] || c[1] != m[1] || Dims(in.t[5]) != c || D < 2 || k.size() != 2 || v != k ||
      q[0] != m[0] * m[1] || k[0] != q[0] || q[1] % D != 0 || k[1] % D != 0 || k[1] < D || (q[1] / D) % (k[1] / D) != 0) {
    return Fail(ctx, std::string(op) + ": expected q [B*T,H*D], k and v [B*T,Hk*D] with H a multiple of Hk, mask [B,T], cos and sin [B,T,D/2]; got q " +
                         ShapeString(q) + ", k " + ShapeString(k) + ", v " + ShapeString(v) + ", mask " + ShapeString(m) + ", cos " + ShapeString(c) +
                         ", sin " + ShapeString(Dims(in.t[5])));
  }
  s = {m[0], m[1], q[1] / D, k[1] / D, D, (q[1] / D) / (k[1] / D)};
  return true;
}

// dst = rotate(src) * scale (inverse = false) or rotate^T(src) * scale (inverse = true), for
// x [B,T,heads,D] with cos, sin [B,T,D/2]; with `at`, x is [N,heads,D] and row n takes the
// factors of flat position at[n].
void Rotate(const float *src, float *dst, int64_t BT, int64_t heads, int64_t D, const float *cos, const float *sin, float scale,
            bool inverse, const int64_t *at = nullptr) {
  const int64_t half = D / 2;
  const float sgn = inverse ? -1.f : 1.f;
  ParallelRanges(BT, 4.0 * heads * D, [&](int64_t r0, int64_t r1) {
    // The factors are scaled first, as the eager decoder folds the scale into them.
    Eigen::ArrayXf c(half), sn(half);
    for (int64_t bt = r0; bt < r1; bt++) {
      const int64_t pos = at ? at[bt] : bt;
      c = Eigen::Map<const Eigen::ArrayXf>(cos + pos * half, half) * scale;
      sn = Eigen::Map<const Eigen::ArrayXf>(sin + pos * half, half) * (sgn * scale);
      for (int64_t h = 0; h < heads; h++) {
        const float *x = src + (bt * heads + h) * D;
        float *y = dst + (bt * heads + h) * D;
        Eigen::Map<const Eigen::ArrayXf> x1(x, half), x2(x + half, half);
        Eigen::Map<Eigen::ArrayXf> y1(y, half), y2(y + half, half);
        y1 = x1 * c - x2 * sn;
        y2 = x2 * c + x1 * sn;
      }
    }
  });
}

void RopeAttentionCompute(void *state, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitRopeAttention")) return;
  AttnShape s;
  bool flat;
  if (!CheckRopeInputs(ctx, in, s, flat, "PrmkitRopeAttention")) return;
  const float scale = static_cast<RopeState *>(state)->scale;
  Outputs outs;
  float *out = outs.Add(ctx, Dims(in.t[0]));
  float *lse = out ? outs.Add(ctx, {s.B, s.H, s.T}) : nullptr;
  if (!lse) return;
  std::vector<float> qr(static_cast<size_t>(s.B * s.T * s.H * s.D)), kr(static_cast<size_t>(s.B * s.T * s.Hk * s.D));
  const float *cos = Data(in.t[4]), *sin = Data(in.t[5]);
  Rotate(Data(in.t[0]), qr.data(), s.B * s.T, s.H, s.D, cos, sin, scale, false);
  Rotate(Data(in.t[1]), kr.data(), s.B * s.T, s.Hk, s.D, cos, sin, 1.f, false);
  AttentionForward(s, qr.data(), kr.data(), Data(in.t[2]), Data(in.t[3]), out, lse);
}

// PrmkitRopeAttentionGrad(q, k, v, mask, cos, sin, out, lse, dout; scale) -> dq, dk, dv (of the
// unrotated q and k).
void RopeAttentionGradCompute(void *state, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitRopeAttentionGrad")) return;
  AttnShape s;
  bool flat;
  if (!CheckRopeInputs(ctx, in, s, flat, "PrmkitRopeAttentionGrad") || !CheckGradInputs(ctx, in, s, 6, 7, 8, "PrmkitRopeAttentionGrad")) {
    return;
  }
  const float scale = static_cast<RopeState *>(state)->scale;
  Outputs outs;
  float *dq = outs.Add(ctx, Dims(in.t[0]));
  float *dk = dq ? outs.Add(ctx, Dims(in.t[1])) : nullptr;
  float *dv = dk ? outs.Add(ctx, Dims(in.t[1])) : nullptr;
  if (!dv) return;
  const size_t nq = static_cast<size_t>(s.B * s.T * s.H * s.D), nk = static_cast<size_t>(s.B * s.T * s.Hk * s.D);
  std::vector<float> qr(nq), kr(nk), dqr(nq), dkr(nk);
  const float *cos = Data(in.t[4]), *sin = Data(in.t[5]);
  Rotate(Data(in.t[0]), qr.data(), s.B * s.T, s.H, s.D, cos, sin, scale, false);
  Rotate(Data(in.t[1]), kr.data(), s.B * s.T, s.Hk, s.D, cos, sin, 1.f, false);
  AttentionBackward(s, qr.data(), kr.data(), Data(in.t[2]), Data(in.t[3]), Data(in.t[6]), Data(in.t[7]), Data(in.t[8]),
                    dqr.data(), dkr.data(), dv);
  Rotate(dqr.data(), dq, s.B * s.T, s.H, s.D, cos, sin, scale, true);
  Rotate(dkr.data(), dk, s.B * s.T, s.Hk, s.D, cos, sin, 1.f, true);
}

// --- attention at chosen query rows ----------------------------------------------------------
//
// PrmkitRopeAttentionRows(q [N,H,D], k, v [B,T,Hk,D], mask [B,T], cos, sin [B,T,D/2], rows [N];
// scale) -> out [N,H,D], lse [N,H]: PrmkitRopeAttention's output at N query rows only, row n
// being flat position rows[n] = b*T + t (a float holding an integer: the op's inputs are all
// float). Every key is still read; only the queries are cut. A PRM's last layer needs its
// output at the step tokens alone.

struct RowsShape {
  AttnShape a;  // a.T: the key length
  int64_t N;
};

bool CheckAttentionRows(TF_OpKernelContext *ctx, const Inputs &in, RowsShape &rs, std::vector<int64_t> &at, const char *op) {
  auto q = Dims(in.t[0]), k = Dims(in.t[1]), v = Dims(in.t[2]), m = Dims(in.t[3]), r = Dims(in.t[6]), c = Dims(in.t[4]);
  // The flat layout (q [N,H*D], k and v [B*T,Hk*D]; see CheckRopeInputs) read as the 3-D and 4-D one.
  if (q.size() == 2 && k.size() == 2 && m.size() == 2 && c.size() == 3 && c[2] > 0 && k[0] == m[0] * m[1]) {
    const int64_t D = 2 * c[2];
    if (q[1] % D == 0 && k[1] % D == 0) {
      q = {q[0], q[1] / D, D};
      k = {m[0], m[1], k[1] / D, D};
      v = v == Dims(in.t[1]) ? k : v;
    }
  }
  if (q.size() != 3 || k.size() != 4 || v != k || m.size() != 2 || r.size() != 1 || r[0] != q[0] || k[3] != q[2] ||
      m[0] != k[0] || m[1] != k[1] || k[2] < 1 || q[1] % k[2] != 0 || q[2] % 2 != 0) {
    return Fail(ctx, std::string(op) + ": expected q [N,H,D], k and v [B,T,Hk,D] (or q [N,H*D], k and v [B*T,Hk*D]) with H a multiple of Hk and D even, mask [B,T], rows [N]; got q " +
                         ShapeString(Dims(in.t[0])) + ", k " + ShapeString(Dims(in.t[1])) + ", v " + ShapeString(Dims(in.t[2])) + ", mask " + ShapeString(m) + ", rows " +
                         ShapeString(r));
  }
  rs.a = {k[0], k[1], q[1], k[2], q[2], q[1] / k[2]};
  rs.N = q[0];
  const std::vector<int64_t> want{rs.a.B, rs.a.T, rs.a.D / 2};
  if (Dims(in.t[4]) != want || Dims(in.t[5]) != want) {
    return Fail(ctx, std::string(op) + ": expected cos, sin [B,T,D/2]; got cos " + ShapeString(Dims(in.t[4])) + ", sin " + ShapeString(Dims(in.t[5])));
  }
  const float *rows = Data(in.t[6]);
  at.resize(static_cast<size_t>(rs.N));
  for (int64_t n = 0; n < rs.N; n++) {
    const float f = rows[n];
    if (!(f >= 0.f && f < static_cast<float>(rs.a.B * rs.a.T)) || f != std::floor(f)) {
      return Fail(ctx, std::string(op) + ": rows[" + std::to_string(n) + "] = " + std::to_string(f) + " is not a position in [0, B*T)");
    }
    at[n] = static_cast<int64_t>(f);
  }
  return true;
}

// The query rows of each batch row, in input order.
std::vector<std::vector<int64_t>> RowsByBatch(const std::vector<int64_t> &at, int64_t B, int64_t T) {
  std::vector<std::vector<int64_t>> by(static_cast<size_t>(B));
  for (size_t n = 0; n < at.size(); n++) by[static_cast<size_t>(at[n] / T)].push_back(static_cast<int64_t>(n));
  return by;
}

// Scores of query rows `idx` (positions pos) against keys [0, L) turned into probabilities in
// place; L[i] gets the row's log-sum-exp (or -inf: it sees no key, and its row is zero). With
// lse given (backward), the probabilities are recomputed from it.
void RowSoftmax(RowMajor &S, const std::vector<int64_t> &pos, const float *mrow, float *lse_out, const float *lse_in) {
  const int64_t cols = S.cols();
  const float neg = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < S.rows(); i++) {
    Eigen::Map<Eigen::ArrayXf> row(S.data() + i * cols, cols);
    const int64_t seen = pos[i] + 1;
    for (int64_t j = 0; j < seen; j++) if (!(mrow[j] > 0.f)) row[j] = neg;
    auto live = row.head(seen);
    row.tail(cols - seen).setZero();
    if (lse_in) {
      if (lse_in[i] == neg) { row.setZero(); continue; }
      live = (live - lse_in[i]).exp();
      ZeroMasked(row.data(), seen, mrow);
      continue;
    }
    const float m = live.maxCoeff();
    if (m == neg) { row.setZero(); lse_out[i] = neg; continue; }
    live = (live - m).exp();
    ZeroMasked(row.data(), seen, mrow);
    const float sum = live.sum();
    live *= 1.f / sum;
    lse_out[i] = m + std::log(sum);
  }
}

void RowsAttentionForward(const RowsShape &rs, const std::vector<int64_t> &at, const float *q, const float *k, const float *v,
                          const float *mask, float *out, float *lse) {
  const AttnShape &s = rs.a;
  const int64_t T = s.T, D = s.D, H = s.H, Hk = s.Hk;
  const auto by = RowsByBatch(at, s.B, T);
  ThePool().For(s.B * H, [&](int64_t task) {
    const int64_t b = task / H, h = task % H, hk = h / s.groups;
    const auto &idx = by[static_cast<size_t>(b)];
    if (idx.empty()) return;
    std::vector<int64_t> pos(idx.size());
    int64_t L = 0;
    for (size_t i = 0; i < idx.size(); i++) L = std::max(L, (pos[i] = at[static_cast<size_t>(idx[i])] % T) + 1);
    thread_local RowMajor Q, S, O;
    thread_local std::vector<float> lrow;
    const int64_t n = static_cast<int64_t>(idx.size());
    Q.resize(n, D);
    for (int64_t i = 0; i < n; i++) Q.row(i) = Eigen::Map<const Eigen::RowVectorXf>(q + (idx[i] * H + h) * D, D);
    ConstMap K(k + (b * T * Hk + hk) * D, L, D, Strided(Hk * D));
    ConstMap V(v + (b * T * Hk + hk) * D, L, D, Strided(Hk * D));
    S.resize(n, L);
    S.noalias() = Q * K.transpose();
    lrow.resize(static_cast<size_t>(n));
    RowSoftmax(S, pos, mask + b * T, lrow.data(), nullptr);
    O.resize(n, D);
    O.noalias() = S * V;
    for (int64_t i = 0; i < n; i++) {
      Eigen::Map<Eigen::RowVectorXf>(out + (idx[i] * H + h) * D, D) = O.row(i);
      lse[idx[i] * H + h] = lrow[static_cast<size_t>(i)];
    }
  }, static_cast<double>(rs.N) * H * T * D);
}

void RowsAttentionCompute(void *state, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitRopeAttentionRows")) return;
  RowsShape rs;
  std::vector<int64_t> at;
  if (!CheckAttentionRows(ctx, in, rs, at, "PrmkitRopeAttentionRows")) return;
  const AttnShape &s = rs.a;
  const float scale = static_cast<RopeState *>(state)->scale;
  Outputs outs;
  float *out = outs.Add(ctx, Dims(in.t[0]));
  float *lse = out ? outs.Add(ctx, {rs.N, s.H}) : nullptr;
  if (!lse || rs.N == 0) return;
  std::vector<float> qr(static_cast<size_t>(rs.N * s.H * s.D)), kr(static_cast<size_t>(s.B * s.T * s.Hk * s.D));
  const float *cos = Data(in.t[4]), *sin = Data(in.t[5]);
  Rotate(Data(in.t[0]), qr.data(), rs.N, s.H, s.D, cos, sin, scale, false, at.data());
  Rotate(Data(in.t[1]), kr.data(), s.B * s.T, s.Hk, s.D, cos, sin, 1.f, false);
  RowsAttentionForward(rs, at, qr.data(), kr.data(), Data(in.t[2]), Data(in.t[3]), out, lse);
}

// PrmkitRopeAttentionRowsGrad(q, k, v, mask, cos, sin, rows, out, lse, dout; scale) -> dq [N,H,D],
// dk, dv [B,T,Hk,D] (of the unrotated q and k). Tasks own (batch, kv head), so each writes its
// own rows of dk and dv.
void RowsAttentionGradCompute(void *state, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitRopeAttentionRowsGrad")) return;
  RowsShape rs;
  std::vector<int64_t> at;
  if (!CheckAttentionRows(ctx, in, rs, at, "PrmkitRopeAttentionRowsGrad")) return;
  const AttnShape &s = rs.a;
  const int64_t T = s.T, D = s.D, H = s.H, Hk = s.Hk;
  if (Dims(in.t[7]) != Dims(in.t[0]) || Dims(in.t[9]) != Dims(in.t[0]) || Dims(in.t[8]) != std::vector<int64_t>{rs.N, H}) {
    return void(Fail(ctx, "PrmkitRopeAttentionRowsGrad: out and dout must be shaped like q, lse [N,H]"));
  }
  const float scale = static_cast<RopeState *>(state)->scale;
  Outputs outs;
  float *dq = outs.Add(ctx, Dims(in.t[0]));
  float *dk = dq ? outs.Add(ctx, Dims(in.t[1])) : nullptr;
  float *dv = dk ? outs.Add(ctx, Dims(in.t[1])) : nullptr;
  if (!dv) return;
  std::memset(dk, 0, sizeof(float) * s.B * T * Hk * D);
  std::memset(dv, 0, sizeof(float) * s.B * T * Hk * D);
  if (rs.N == 0) return;
  const size_t nq = static_cast<size_t>(rs.N * H * D), nk = static_cast<size_t>(s.B * T * Hk * D);
  std::vector<float> qr(nq), kr(nk), dqr(nq, 0.f), dkr(nk, 0.f);
  const float *cos = Data(in.t[4]), *sin = Data(in.t[5]);
  Rotate(Data(in.t[0]), qr.data(), rs.N, H, D, cos, sin, scale, false, at.data());
  Rotate(Data(in.t[1]), kr.data(), s.B * T, Hk, D, cos, sin, 1.f, false);
  const float *v = Data(in.t[2]), *mask = Data(in.t[3]), *out = Data(in.t[7]), *lse = Data(in.t[8]), *dout = Data(in.t[9]);
  const auto by = RowsByBatch(at, s.B, T);
  ThePool().For(s.B * Hk, [&](int64_t task) {
    const int64_t b = task / Hk, hk = task % Hk;
    const auto &idx = by[static_cast<size_t>(b)];
    if (idx.empty()) return;
    const int64_t n = static_cast<int64_t>(idx.size());
    std::vector<int64_t> pos(idx.size());
    int64_t L = 0;
    for (size_t i = 0; i < idx.size(); i++) L = std::max(L, (pos[i] = at[static_cast<size_t>(idx[i])] % T) + 1);
    ConstMap K(kr.data() + (b * T * Hk + hk) * D, L, D, Strided(Hk * D));
    ConstMap V(v + (b * T * Hk + hk) * D, L, D, Strided(Hk * D));
    MutMap dK(dkr.data() + (b * T * Hk + hk) * D, L, D, Strided(Hk * D));
    MutMap dV(dv + (b * T * Hk + hk) * D, L, D, Strided(Hk * D));
    thread_local RowMajor Q, O, dO, P, dP, dQ;
    thread_local std::vector<float> lrow;
    thread_local Eigen::VectorXf Drow;
    Q.resize(n, D); O.resize(n, D); dO.resize(n, D);
    lrow.resize(static_cast<size_t>(n));
    for (int64_t h = hk * s.groups; h < (hk + 1) * s.groups; h++) {
      for (int64_t i = 0; i < n; i++) {
        const int64_t off = (idx[i] * H + h) * D;
        Q.row(i) = Eigen::Map<const Eigen::RowVectorXf>(qr.data() + off, D);
        O.row(i) = Eigen::Map<const Eigen::RowVectorXf>(out + off, D);
        dO.row(i) = Eigen::Map<const Eigen::RowVectorXf>(dout + off, D);
        lrow[static_cast<size_t>(i)] = lse[idx[i] * H + h];
      }
      P.resize(n, L);
      P.noalias() = Q * K.transpose();
      RowSoftmax(P, pos, mask + b * T, nullptr, lrow.data());
      dP.resize(n, L);
      dP.noalias() = dO * V.transpose();
      Drow = (dO.array() * O.array()).rowwise().sum();
      dP.array() = P.array() * (dP.array().colwise() - Drow.array());  // dS
      dV.noalias() += P.transpose() * dO;
      dK.noalias() += dP.transpose() * Q;
      dQ.resize(n, D);
      dQ.noalias() = dP * K;
      for (int64_t i = 0; i < n; i++) Eigen::Map<Eigen::RowVectorXf>(dqr.data() + (idx[i] * H + h) * D, D) = dQ.row(i);
    }
  }, 2.5 * rs.N * H * T * D);
  Rotate(dqr.data(), dq, rs.N, H, D, cos, sin, scale, true, at.data());
  Rotate(dkr.data(), dk, s.B * T, Hk, D, cos, sin, 1.f, true);
}

// --- RMSNorm -------------------------------------------------------------------------------

struct RmsNormState {
  float eps;
};

void *RmsNormCreate(TF_OpKernelConstruction *ctx) {
  auto *st = new RmsNormState{1e-6f};
  GetFloatAttr(ctx, "eps", &st->eps);
  return st;
}
void RmsNormDelete(void *p) { delete static_cast<RmsNormState *>(p); }

bool CheckRows(TF_OpKernelContext *ctx, const TF_Tensor *x, const TF_Tensor *w, int64_t &N, int64_t &C, const char *op) {
  auto xd = Dims(x), wd = Dims(w);
  if (xd.size() != 2 || wd.size() != 1 || wd[0] != xd[1]) {
    return Fail(ctx, std::string(op) + ": expected x [N,C] and w [C], got " + ShapeString(xd) + " and " + ShapeString(wd));
  }
  N = xd[0];
  C = xd[1];
  return true;
}

// y = x / rms(x) * w and rstd = 1 / rms(x), row by row.
void RmsNormForward(const float *x, const float *w, float eps, int64_t N, int64_t C, float *y, float *rstd) {
  ParallelRanges(N, 4.0 * C, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      Eigen::Map<const Eigen::ArrayXf> xr(x + r * C, C), wr(w, C);
      Eigen::Map<Eigen::ArrayXf> yr(y + r * C, C);
      const float rs = 1.f / std::sqrt(xr.square().sum() / static_cast<float>(C) + eps);
      rstd[r] = rs;
      yr = xr * rs * wr;
    }
  });
}

void RmsNormCompute(void *state, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitRmsNorm")) return;
  int64_t N, C;
  if (!CheckRows(ctx, in.t[0], in.t[1], N, C, "PrmkitRmsNorm")) return;
  Outputs outs;
  float *y = outs.Add(ctx, {N, C});
  float *rstd = y ? outs.Add(ctx, {N}) : nullptr;
  if (!rstd) return;
  RmsNormForward(Data(in.t[0]), Data(in.t[1]), static_cast<RmsNormState *>(state)->eps, N, C, y, rstd);
}

// PrmkitAddRmsNorm(x, r, w; eps) -> sum = x + r, y = RMSNorm(sum), rstd: the decoder's residual
// add and the post-attention norm in one pass. The backward (PrmkitAddRmsNormGrad) adds the
// gradient arriving at the sum from the next residual to the norm's, so the tape needs neither
// the add nor the sum of the two gradients as ops of their own.
void AddRmsNormCompute(void *state, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitAddRmsNorm")) return;
  int64_t N, C;
  if (!CheckRows(ctx, in.t[0], in.t[2], N, C, "PrmkitAddRmsNorm")) return;
  if (Dims(in.t[1]) != Dims(in.t[0])) {
    Fail(ctx, "PrmkitAddRmsNorm: r must be shaped like x, got " + ShapeString(Dims(in.t[1])) + " and " + ShapeString(Dims(in.t[0])));
    return;
  }
  const float *x = Data(in.t[0]), *r = Data(in.t[1]);
  Outputs outs;
  float *sum = outs.Add(ctx, {N, C});
  float *y = sum ? outs.Add(ctx, {N, C}) : nullptr;
  float *rstd = y ? outs.Add(ctx, {N}) : nullptr;
  if (!rstd) return;
  ParallelRanges(N * C, 1.0, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) sum[i] = x[i] + r[i];
  });
  RmsNormForward(sum, Data(in.t[2]), static_cast<RmsNormState *>(state)->eps, N, C, y, rstd);
}

// dx and dw of RMSNorm from dy; with dres, dx also gets dres added (the gradient reaching x by
// another path: PrmkitAddRmsNorm's sum).
void RmsNormBackward(const float *dy, const float *x, const float *w, const float *rstd, const float *dres, int64_t N, int64_t C,
                     float *dx, float *dw) {
  // dw is a column sum: each chunk of rows sums into its own row of `partial`.
  const double work = 8.0 * N * C;
  const int64_t chunks = work < kSerialWork ? 1 : std::max<int64_t>(1, std::min<int64_t>(ThePool().size() * 4, N / 8));
  const int64_t per = (N + chunks - 1) / chunks;
  std::vector<float> partial(static_cast<size_t>(chunks * C), 0.f);
  ThePool().For(chunks, [&](int64_t ch) {
    const int64_t r0 = ch * per, r1 = std::min(N, r0 + per);
    Eigen::Map<Eigen::ArrayXf> pw(partial.data() + ch * C, C);
    Eigen::Map<const Eigen::ArrayXf> wr(w, C);
    for (int64_t r = r0; r < r1; r++) {
      Eigen::Map<const Eigen::ArrayXf> xr(x + r * C, C), dyr(dy + r * C, C);
      Eigen::Map<Eigen::ArrayXf> dxr(dx + r * C, C);
      const float rs = rstd[r];
      pw += dyr * xr * rs;
      const float mean = (dyr * wr * xr).sum() * rs / static_cast<float>(C);  // mean(dy * w * xhat)
      dxr = rs * (dyr * wr - xr * (rs * mean));
      if (dres) dxr += Eigen::Map<const Eigen::ArrayXf>(dres + r * C, C);
    }
  });
  std::fill(dw, dw + C, 0.f);
  for (int64_t ch = 0; ch < chunks; ch++) {
    const float *pw = partial.data() + ch * C;
    for (int64_t c = 0; c < C; c++) dw[c] += pw[c];
  }
}

// PrmkitRmsNormGrad(dy, x, w, rstd) -> dx, dw, and PrmkitAddRmsNormGrad(dsum, dy, sum, w, rstd) ->
// dx (the gradient of both x and r), dw: the same with dsum added to dx.
template <bool kWithResidual>
void RmsNormGradCompute(void *, TF_OpKernelContext *ctx) {
  const char *op = kWithResidual ? "PrmkitAddRmsNormGrad" : "PrmkitRmsNormGrad";
  const int o = kWithResidual ? 1 : 0;  // where dy is
  Inputs in;
  if (!GetInputs(ctx, in, op)) return;
  int64_t N, C;
  if (!CheckRows(ctx, in.t[o + 1], in.t[o + 2], N, C, op)) return;
  if (Dims(in.t[o]) != Dims(in.t[o + 1]) || Dims(in.t[0]) != Dims(in.t[o + 1]) || Dims(in.t[o + 3]) != std::vector<int64_t>{N}) {
    Fail(ctx, std::string(op) + (kWithResidual ? ": dsum and dy" : ": dy") + " must be shaped like x and rstd [N]");
    return;
  }
  Outputs outs;
  float *dx = outs.Add(ctx, {N, C});
  float *dw = dx ? outs.Add(ctx, {C}) : nullptr;
  if (!dw) return;
  RmsNormBackward(Data(in.t[o]), Data(in.t[o + 1]), Data(in.t[o + 2]), Data(in.t[o + 3]), kWithResidual ? Data(in.t[0]) : nullptr, N, C,
                  dx, dw);
}

// --- SwiGLU --------------------------------------------------------------------------------

bool CheckSame(TF_OpKernelContext *ctx, const Inputs &in, const char *op) {
  for (size_t i = 1; i < in.t.size(); i++) {
    if (Dims(in.t[i]) != Dims(in.t[0])) {
      return Fail(ctx, std::string(op) + ": inputs must have one shape, got " + ShapeString(Dims(in.t[0])) + " and " + ShapeString(Dims(in.t[i])));
    }
  }
  return true;
}

void SwiGluCompute(void *, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitSwiGlu") || !CheckSame(ctx, in, "PrmkitSwiGlu")) return;
  const float *g = Data(in.t[0]), *u = Data(in.t[1]);
  const int64_t n = static_cast<int64_t>(TF_TensorElementCount(in.t[0]));
  Outputs outs;
  float *y = outs.Add(ctx, Dims(in.t[0]));
  if (!y) return;
  ParallelRanges(n, 12.0, [&](int64_t s0, int64_t s1) {
    Eigen::Map<const Eigen::ArrayXf> gs(g + s0, s1 - s0), us(u + s0, s1 - s0);
    Eigen::Map<Eigen::ArrayXf>(y + s0, s1 - s0) = gs * gs.logistic() * us;
  });
}

void SwiGluGradCompute(void *, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitSwiGluGrad") || !CheckSame(ctx, in, "PrmkitSwiGluGrad")) return;
  const float *dy = Data(in.t[0]), *g = Data(in.t[1]), *u = Data(in.t[2]);
  const int64_t n = static_cast<int64_t>(TF_TensorElementCount(in.t[0]));
  Outputs outs;
  float *dg = outs.Add(ctx, Dims(in.t[0]));
  float *du = dg ? outs.Add(ctx, Dims(in.t[0])) : nullptr;
  if (!du) return;
  ParallelRanges(n, 20.0, [&](int64_t s0, int64_t s1) {
    // In slices that stay in cache: sigmoid once, then both outputs.
    constexpr int64_t kSlice = 2048;
    Eigen::ArrayXf sg(kSlice);
    for (int64_t a = s0; a < s1; a += kSlice) {
      const int64_t len = std::min(kSlice, s1 - a);
      Eigen::Map<const Eigen::ArrayXf> gs(g + a, len), us(u + a, len), dys(dy + a, len);
      auto sgs = sg.head(len);
      sgs = gs.logistic();
      Eigen::Map<Eigen::ArrayXf>(du + a, len) = dys * gs * sgs;
      Eigen::Map<Eigen::ArrayXf>(dg + a, len) = dys * us * sgs * (1.f + gs * (1.f - sgs));
    }
  });
}

// --- AdamW ---------------------------------------------------------------------------------
//
// PrmkitAdamWInPlace(p, m, v, g; grad_scale, one_minus_b1, one_minus_b2, bc2, eps,
// decay_factor, neg_step) -> p': one parameter's AdamW update in one pass, in the order and form
// of src/train/optimizer.ts (torch.optim.AdamW's single-tensor form):
//   g *= grad_scale; m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); p *= decay_factor;
//   p += m / (sqrt(v) / bc2 + eps) * neg_step
// The moments m and v are written IN PLACE, as torch's optimizer does: new moment tensors beside
// the old would put two more tensors of the largest parameter (the embedding) on the step's
// peak memory. That breaks TensorFlow's rule that inputs are immutable, so the caller must own
// m's and v's buffers alone (AdamW's private moment variables: src/train/optimizer.ts).

struct AdamWState {
  float grad_scale, one_minus_b1, one_minus_b2, bc2, eps, decay_factor, neg_step;
};

void *AdamWCreate(TF_OpKernelConstruction *ctx) {
  auto *st = new AdamWState{};
  const std::pair<const char *, float *> attrs[] = {
      {"grad_scale", &st->grad_scale}, {"one_minus_b1", &st->one_minus_b1}, {"one_minus_b2", &st->one_minus_b2},
      {"bc2", &st->bc2}, {"eps", &st->eps}, {"decay_factor", &st->decay_factor}, {"neg_step", &st->neg_step}};
  for (const auto &a : attrs) {
    if (!GetFloatAttr(ctx, a.first, a.second)) break;
  }
  return st;
}
void AdamWDelete(void *p) { delete static_cast<AdamWState *>(p); }

void AdamWCompute(void *state, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitAdamWInPlace") || !CheckSame(ctx, in, "PrmkitAdamWInPlace")) return;
  const AdamWState &a = *static_cast<AdamWState *>(state);
  const float *p = Data(in.t[0]), *g = Data(in.t[3]);
  float *m = static_cast<float *>(TF_TensorData(in.t[1])), *v = static_cast<float *>(TF_TensorData(in.t[2]));
  const int64_t n = static_cast<int64_t>(TF_TensorElementCount(in.t[0]));
  Outputs outs;
  float *po = outs.Add(ctx, Dims(in.t[0]));
  if (!po) return;
  ParallelRanges(n, 12.0, [&](int64_t s0, int64_t s1) {
    const int64_t len = s1 - s0;
    Eigen::Map<const Eigen::ArrayXf> ps(p + s0, len), gs(g + s0, len);
    Eigen::Map<Eigen::ArrayXf> pn(po + s0, len), mn(m + s0, len), vn(v + s0, len);
    if (a.grad_scale != 1.f) {
      // Through the output buffer of p: g * scale rounded once, as the eager op does.
      pn = gs * a.grad_scale;
      mn += (pn - mn) * a.one_minus_b1;
      vn += (pn.square() - vn) * a.one_minus_b2;
    } else {
      mn += (gs - mn) * a.one_minus_b1;
      vn += (gs.square() - vn) * a.one_minus_b2;
    }
    pn = ps * a.decay_factor;
    pn = pn + mn / (vn.sqrt() / a.bc2 + a.eps) * a.neg_step;
  });
}

// --- copy into a buffer, in place ------------------------------------------------------------
//
// PrmkitCopyIntoInPlace(dst, src; dst_offset, src_offset, length) writes src's flat values
// [src_offset, src_offset + length) over dst's [dst_offset, dst_offset + length) and returns
// nothing. The sharded optimizer's weight all-gather (src/train/zero.ts) assembles each parameter
// in one buffer as its pieces arrive, instead of keeping the pieces and concatenating them: the
// largest parameter (the embedding) once in flight instead of twice. Like the AdamW moments, dst
// is written IN PLACE, so the caller must own its buffer alone (a tensor it just created).

struct CopyIntoState {
  int64_t dst_offset = 0, src_offset = 0, length = 0;
};

void *CopyIntoCreate(TF_OpKernelConstruction *ctx) {
  auto *st = new CopyIntoState{};
  const std::pair<const char *, int64_t *> attrs[] = {{"dst_offset", &st->dst_offset}, {"src_offset", &st->src_offset}, {"length", &st->length}};
  for (const auto &a : attrs) {
    TF_Status *s = TF_NewStatus();
    TF_OpKernelConstruction_GetAttrInt64(ctx, a.first, a.second, s);
    const bool ok = TF_GetCode(s) == TF_OK;
    if (!ok) TF_OpKernelConstruction_Failure(ctx, s);
    TF_DeleteStatus(s);
    if (!ok) break;
  }
  return st;
}
void CopyIntoDelete(void *p) { delete static_cast<CopyIntoState *>(p); }

void CopyIntoCompute(void *state, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitCopyIntoInPlace")) return;
  const CopyIntoState &st = *static_cast<CopyIntoState *>(state);
  const int64_t nd = static_cast<int64_t>(TF_TensorElementCount(in.t[0])), ns = static_cast<int64_t>(TF_TensorElementCount(in.t[1]));
  if (st.length < 0 || st.dst_offset < 0 || st.src_offset < 0 || st.dst_offset + st.length > nd || st.src_offset + st.length > ns) {
    return void(Fail(ctx, "PrmkitCopyIntoInPlace: " + std::to_string(st.length) + " values from offset " + std::to_string(st.src_offset) +
                              " of " + std::to_string(ns) + " into offset " + std::to_string(st.dst_offset) + " of " + std::to_string(nd) +
                              " are out of range"));
  }
  float *dst = static_cast<float *>(TF_TensorData(in.t[0]));
  std::memcpy(dst + st.dst_offset, Data(in.t[1]) + st.src_offset, sizeof(float) * static_cast<size_t>(st.length));
}

// --- sum of squares ------------------------------------------------------------------------

// PrmkitSumSquares(x: N * float) -> sum []: the sum of the squares of every element of every
// input, for the gradients' global norm. One kernel call for all the parameters' gradients, where
// the eager ops take a square and a sum per parameter (two kernel calls each, and a temporary of
// the parameter's size). Summed in double, in fixed chunks and a fixed order: the result does not
// depend on the thread count.
void SumSquaresCompute(void *, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitSumSquares")) return;
  constexpr int64_t kChunk = 1 << 16;
  struct Piece {
    const float *x;
    int64_t n;
  };
  std::vector<Piece> pieces;
  for (TF_Tensor *t : in.t) {
    const int64_t n = TF_TensorElementCount(t);
    for (int64_t o = 0; o < n; o += kChunk) pieces.push_back({Data(t) + o, std::min(kChunk, n - o)});
  }
  std::vector<double> partial(pieces.size(), 0.0);
  ParallelRanges(static_cast<int64_t>(pieces.size()), 2.0 * kChunk, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      Eigen::Map<const Eigen::ArrayXf> x(pieces[p].x, pieces[p].n);
      partial[p] = x.cast<double>().square().sum();
    }
  });
  double total = 0.0;
  for (double v : partial) total += v;
  Outputs outs;
  float *out = outs.Add(ctx, {});
  if (out) *out = static_cast<float>(total);
}

// --- dropout -------------------------------------------------------------------------------

// PrmkitDropout(x, key [4]; rate) -> y: element i is x[i] / (1 - rate) when kept, else 0. Whether
// it is kept is a pure function of the 64-bit key (four 16-bit pieces, exact in float32) and i,
// drawn from a counter-based hash (splitmix64's finalizer of key + i times the golden ratio), so:
// the gradient is this op on dy with the same key and no mask is ever stored; a recomputed
// forward draws the same mask; and neither the thread count nor the chunking changes it. LoRA's
// dropout draws one mask per projection and step; the eager tf.dropout drew it in JavaScript and
// uploaded it, a quarter of a LoRA step at 0.5B size.
struct DropoutState {
  float rate;
};

void *DropoutCreate(TF_OpKernelConstruction *ctx) {
  auto *st = new DropoutState{0.0f};
  GetFloatAttr(ctx, "rate", &st->rate);
  return st;
}
void DropoutDelete(void *p) { delete static_cast<DropoutState *>(p); }

inline uint64_t MixBits(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void DropoutCompute(void *p, TF_OpKernelContext *ctx) {
  const float rate = static_cast<DropoutState *>(p)->rate;
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitDropout")) return;
  if (!(rate >= 0.0f && rate < 1.0f)) {
    Fail(ctx, "PrmkitDropout: rate must be in [0, 1), got " + std::to_string(rate));
    return;
  }
  if (TF_TensorElementCount(in.t[1]) != 4) {
    Fail(ctx, "PrmkitDropout: key must have 4 elements, got " + ShapeString(Dims(in.t[1])));
    return;
  }
  uint64_t key = 0;
  for (int j = 0; j < 4; j++) {
    const float piece = Data(in.t[1])[j];
    if (!(piece >= 0.0f && piece <= 65535.0f) || piece != std::floor(piece)) {
      Fail(ctx, "PrmkitDropout: key pieces must be integers in [0, 65535], got " + std::to_string(piece));
      return;
    }
    key |= static_cast<uint64_t>(piece) << (16 * j);
  }
  const float *x = Data(in.t[0]);
  const int64_t n = static_cast<int64_t>(TF_TensorElementCount(in.t[0]));
  Outputs outs;
  float *y = outs.Add(ctx, Dims(in.t[0]));
  if (!y) return;
  const float keep = 1.0f - rate;
  const float scale = 1.0f / keep;
  // Kept iff the hash's top 24 bits, as a uniform in [0, 1), fall below keep.
  const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(keep) * 16777216.0);
  ParallelRanges(n, 4.0, [&](int64_t s0, int64_t s1) {
    for (int64_t i = s0; i < s1; i++) {
      const uint64_t u = MixBits(key + static_cast<uint64_t>(i + 1) * 0x9E3779B97F4A7C15ULL) >> 40;
      y[i] = u < threshold ? x[i] * scale : 0.0f;
    }
  });
}

// --- registration --------------------------------------------------------------------------

bool RegisterOp(const char *name, std::initializer_list<const char *> inputs,
                std::initializer_list<const char *> outputs, std::initializer_list<const char *> attrs,
                void *(*create)(TF_OpKernelConstruction *), void (*compute)(void *, TF_OpKernelContext *),
                void (*del)(void *), std::string &error) {
  TF_Status *s = TF_NewStatus();
  TF_OpDefinitionBuilder *op = TF_NewOpDefinitionBuilder(name);
  for (auto *i : inputs) TF_OpDefinitionBuilderAddInput(op, i);
  for (auto *o : outputs) TF_OpDefinitionBuilderAddOutput(op, o);
  for (auto *a : attrs) TF_OpDefinitionBuilderAddAttr(op, a);
  TF_RegisterOpDefinition(op, s);
  if (TF_GetCode(s) == TF_OK) {
    TF_KernelBuilder *kb = TF_NewKernelBuilder(name, "CPU", create, compute, del);
    TF_RegisterKernelBuilder((std::string(name) + "Cpu").c_str(), kb, s);
  }
  bool ok = TF_GetCode(s) == TF_OK;
  if (!ok) error = std::string(name) + ": " + TF_Message(s);
  TF_DeleteStatus(s);
  return ok;
}

}  // namespace prmkit_fused

namespace tfnodejs {

// Registers the ops once per process (the registry is global; a second binding instance, e.g.
// a worker thread, reuses them). Returns "" or why registration failed.
std::string RegisterPrmkitFusedOps() {
  using namespace prmkit_fused;
  static std::string result = [] {
    std::string error;
    const bool ok =
        RegisterOp("PrmkitAttention", {"q: float", "k: float", "v: float", "mask: float"}, {"out: float", "lse: float"}, {},
                   NoState, AttentionCompute, NoDelete, error) &&
        RegisterOp("PrmkitAttentionGrad",
                   {"q: float", "k: float", "v: float", "mask: float", "out: float", "lse: float", "dout: float"},
                   {"dq: float", "dk: float", "dv: float"}, {}, NoState, AttentionGradCompute, NoDelete, error) &&
        RegisterOp("PrmkitRopeAttention", {"q: float", "k: float", "v: float", "mask: float", "cos: float", "sin: float"},
                   {"out: float", "lse: float"}, {"scale: float"}, RopeCreate, RopeAttentionCompute, RopeDelete, error) &&
        RegisterOp("PrmkitRopeAttentionGrad",
                   {"q: float", "k: float", "v: float", "mask: float", "cos: float", "sin: float", "out: float", "lse: float",
                    "dout: float"},
                   {"dq: float", "dk: float", "dv: float"}, {"scale: float"}, RopeCreate, RopeAttentionGradCompute, RopeDelete,
                   error) &&
        RegisterOp("PrmkitRopeAttentionRows",
                   {"q: float", "k: float", "v: float", "mask: float", "cos: float", "sin: float", "rows: float"},
                   {"out: float", "lse: float"}, {"scale: float"}, RopeCreate, RowsAttentionCompute, RopeDelete, error) &&
        RegisterOp("PrmkitRopeAttentionRowsGrad",
                   {"q: float", "k: float", "v: float", "mask: float", "cos: float", "sin: float", "rows: float", "out: float",
                    "lse: float", "dout: float"},
                   {"dq: float", "dk: float", "dv: float"}, {"scale: float"}, RopeCreate, RowsAttentionGradCompute, RopeDelete,
                   error) &&
        RegisterOp("PrmkitRmsNorm", {"x: float", "w: float"}, {"y: float", "rstd: float"}, {"eps: float"}, RmsNormCreate,
                   RmsNormCompute, RmsNormDelete, error) &&
        RegisterOp("PrmkitRmsNormGrad", {"dy: float", "x: float", "w: float", "rstd: float"}, {"dx: float", "dw: float"}, {},
                   NoState, RmsNormGradCompute<false>, NoDelete, error) &&
        RegisterOp("PrmkitAddRmsNorm", {"x: float", "r: float", "w: float"}, {"sum: float", "y: float", "rstd: float"}, {"eps: float"},
                   RmsNormCreate, AddRmsNormCompute, RmsNormDelete, error) &&
        RegisterOp("PrmkitAddRmsNormGrad", {"dsum: float", "dy: float", "sum: float", "w: float", "rstd: float"},
                   {"dx: float", "dw: float"}, {}, NoState, RmsNormGradCompute<true>, NoDelete, error) &&
        RegisterOp("PrmkitAdamWInPlace", {"p: float", "m: float", "v: float", "g: float"}, {"p_out: float"},
                   {"grad_scale: float", "one_minus_b1: float", "one_minus_b2: float", "bc2: float", "eps: float",
                    "decay_factor: float", "neg_step: float"},
                   AdamWCreate, AdamWCompute, AdamWDelete, error) &&
        RegisterOp("PrmkitCopyIntoInPlace", {"dst: float", "src: float"}, {}, {"dst_offset: int", "src_offset: int", "length: int"},
                   CopyIntoCreate, CopyIntoCompute, CopyIntoDelete, error) &&
        RegisterOp("PrmkitSumSquares", {"x: N * float"}, {"sum: float"}, {"N: int >= 1"}, NoState, SumSquaresCompute, NoDelete, error) &&
        RegisterOp("PrmkitDropout", {"x: float", "key: float"}, {"y: float"}, {"rate: float"}, DropoutCreate, DropoutCompute,
                   DropoutDelete, error) &&
        RegisterOp("PrmkitSwiGlu", {"gate: float", "up: float"}, {"y: float"}, {}, NoState, SwiGluCompute, NoDelete, error) &&
        RegisterOp("PrmkitSwiGluGrad", {"dy: float", "gate: float", "up: float"}, {"dgate: float", "dup: float"}, {}, NoState,
                   SwiGluGradCompute, NoDelete, error);
    return ok ? std::string() : error;
  }();
  return result;
}

// Called from RegisterPrmkitCollectives (prmkit_collectives.cc): exports
//   prmkitFusedOps: string[]   the op names, registered
//   prmkitFusedError: string   why registration failed ('' when it did not)
void RegisterPrmkitFused(napi_env env, napi_value exports) {
  const std::string error = RegisterPrmkitFusedOps();
  const char *names[] = {"PrmkitAttention", "PrmkitAttentionGrad", "PrmkitRopeAttention", "PrmkitRopeAttentionGrad", "PrmkitRopeAttentionRows", "PrmkitRopeAttentionRowsGrad", "PrmkitRmsNorm", "PrmkitRmsNormGrad", "PrmkitSwiGlu", "PrmkitSwiGluGrad", "PrmkitAdamWInPlace", "PrmkitCopyIntoInPlace", "PrmkitSumSquares", "PrmkitAddRmsNorm", "PrmkitAddRmsNormGrad", "PrmkitDropout"};
  napi_value ops, err;
  napi_create_array(env, &ops);
  if (error.empty()) {
    for (uint32_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
      napi_value name;
      napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &name);
      napi_set_element(env, ops, i, name);
    }
  }
  napi_create_string_utf8(env, error.c_str(), error.size(), &err);
  napi_set_named_property(env, exports, "prmkitFusedOps", ops);
  napi_set_named_property(env, exports, "prmkitFusedError", err);
}

}  // namespace tfnodejs
