/**
 * prmkit's fused decoder kernels, registered as TensorFlow ops through TensorFlow's C kernel API
 * (tensorflow/c/ops.h, tensorflow/c/kernels.h) when the tfjs-node binding loads. They run in
 * the binding's eager context like any TF op (executeOp by name); src/backend/fused/ wraps them
 * as tfjs kernels with gradients. Copied into binding/ and compiled by scripts/setup-native.
 *
 *   PrmkitAttention(q [B,T,H,D], k [B,T,Hk,D], v [B,T,Hk,D], mask [B,T])
 *       -> out [B,T,H,D], lse [B,H,T]
 *   PrmkitAttentionGrad(q, k, v, mask, out, lse, dout) -> dq, dk, dv
 *   PrmkitRmsNorm(x [N,C], w [C]; eps) -> y [N,C], rstd [N]
 *   PrmkitRmsNormGrad(dy, x, w, rstd) -> dx, dw
 *   PrmkitSwiGlu(gate, up) -> silu(gate) * up
 *   PrmkitSwiGluGrad(dy, gate, up) -> dgate, dup
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

class Pool {
 public:
  Pool() {
    int n = static_cast<int>(std::thread::hardware_concurrency());
    if (const char *env = std::getenv("PRMKIT_FUSED_THREADS")) n = std::atoi(env);
    if (n < 1) n = 1;
    for (int i = 1; i < n; i++) workers_.emplace_back([this] { Loop(); });
    size_ = n;
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto &t : workers_) t.join();
  }
  int size() const { return size_; }

  // Runs fn(i) for i in [0, n); the calling thread takes part. One job at a time (kernels are
  // called from the single eager thread; the mutex guards against a second caller anyway).
  void For(int64_t n, const std::function<void(int64_t)> &fn) {
    if (n <= 0) return;
    if (size_ == 1 || n == 1) {
      for (int64_t i = 0; i < n; i++) fn(i);
      return;
    }
    std::lock_guard<std::mutex> job_lock(job_mu_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      n_ = n;
      next_.store(0);
      active_ = static_cast<int>(workers_.size());
      generation_++;
    }
    cv_.notify_all();
    Work();
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return active_ == 0; });
    fn_ = nullptr;
  }

 private:
  void Work() {
    for (int64_t i; (i = next_.fetch_add(1)) < n_;) (*fn_)(i);
  }
  void Loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      Work();
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) done_cv_.notify_one();
    }
  }
  std::vector<std::thread> workers_;
  std::mutex mu_, job_mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t)> *fn_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  int active_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  int size_ = 1;
};

Pool &ThePool() {
  static Pool *pool = new Pool();  // never destroyed: workers may outlive static destruction order
  return *pool;
}

// Splits [0, n) into about 4 chunks per thread.
template <typename F>
void ParallelRanges(int64_t n, int64_t min_chunk, F &&body) {
  int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(ThePool().size() * 4, n / std::max<int64_t>(1, min_chunk)));
  int64_t per = (n + chunks - 1) / chunks;
  ThePool().For(chunks, [&](int64_t c) {
    int64_t s = c * per, e = std::min(n, s + per);
    if (s < e) body(s, e);
  });
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

// For query block [r0, r1) of batch b: keys [0, r1) are the candidates; allowed(i, j) is
// j <= i and mask[b, j] > 0. Sets disallowed scores to -inf.
inline void MaskScores(RowMajor &S, int64_t r0, const float *mask_row) {
  const int64_t rows = S.rows(), cols = S.cols();
  const float neg = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < rows; i++) {
    float *row = S.data() + i * cols;
    const int64_t last = r0 + i;  // keys > last are in the future
    for (int64_t j = 0; j < cols; j++) {
      if (j > last || !(mask_row[j] > 0.f)) row[j] = neg;
    }
  }
}

void AttentionCompute(void *, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitAttention")) return;
  AttnShape s;
  if (!CheckAttention(ctx, in, s)) return;
  const float *q = Data(in.t[0]), *k = Data(in.t[1]), *v = Data(in.t[2]), *mask = Data(in.t[3]);
  Outputs outs;
  float *out = outs.Add(ctx, {s.B, s.T, s.H, s.D});
  float *lse = out ? outs.Add(ctx, {s.B, s.H, s.T}) : nullptr;
  if (!lse) return;
  const int64_t T = s.T, D = s.D, H = s.H, Hk = s.Hk;
  const int64_t nblocks = (T + kBlock - 1) / kBlock;
  // Tasks: (batch, head, query block), larger blocks (later rows, more keys) first.
  const int64_t tasks = s.B * H * nblocks;
  ThePool().For(tasks, [&](int64_t task) {
    const int64_t blk = nblocks - 1 - task % nblocks;
    const int64_t bh = task / nblocks, b = bh / H, h = bh % H, hk = h / s.groups;
    const int64_t r0 = blk * kBlock, r1 = std::min(T, r0 + kBlock), rows = r1 - r0;
    const float *mrow = mask + b * T;
    ConstMap Q(q + ((b * T + r0) * H + h) * D, rows, D, Strided(H * D));
    ConstMap K(k + (b * T * Hk + hk) * D, r1, D, Strided(Hk * D));
    ConstMap V(v + (b * T * Hk + hk) * D, r1, D, Strided(Hk * D));
    MutMap O(out + ((b * T + r0) * H + h) * D, rows, D, Strided(H * D));
    float *L = lse + (b * H + h) * T + r0;
    thread_local RowMajor S;
    S.resize(rows, r1);
    S.noalias() = Q * K.transpose();
    MaskScores(S, r0, mrow);
    for (int64_t i = 0; i < rows; i++) {
      float *row = S.data() + i * r1;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < r1; j++) m = std::max(m, row[j]);
      if (m == -std::numeric_limits<float>::infinity()) {  // sees no key
        std::fill(row, row + r1, 0.f);
        L[i] = -std::numeric_limits<float>::infinity();
        continue;
      }
      float sum = 0.f;
      for (int64_t j = 0; j < r1; j++) {
        float e = std::exp(row[j] - m);
        row[j] = e;
        sum += e;
      }
      const float inv = 1.f / sum;
      for (int64_t j = 0; j < r1; j++) row[j] *= inv;
      L[i] = m + std::log(sum);
    }
    O.noalias() = S * V;
  });
}

void AttentionGradCompute(void *, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitAttentionGrad")) return;
  AttnShape s;
  if (!CheckAttention(ctx, in, s)) return;
  const float *q = Data(in.t[0]), *k = Data(in.t[1]), *v = Data(in.t[2]), *mask = Data(in.t[3]);
  const float *out = Data(in.t[4]), *lse = Data(in.t[5]), *dout = Data(in.t[6]);
  const int64_t T = s.T, D = s.D, H = s.H, Hk = s.Hk, B = s.B;
  if (Dims(in.t[4]) != Dims(in.t[0]) || Dims(in.t[6]) != Dims(in.t[0]) ||
      Dims(in.t[5]) != std::vector<int64_t>{B, H, T}) {
    Fail(ctx, "PrmkitAttentionGrad: out and dout must be shaped like q, lse [B,H,T]");
    return;
  }
  Outputs outs;
  float *dq = outs.Add(ctx, {B, T, H, D});
  float *dk = dq ? outs.Add(ctx, {B, T, Hk, D}) : nullptr;
  float *dv = dk ? outs.Add(ctx, {B, T, Hk, D}) : nullptr;
  if (!dv) return;
  // Per query head dK and dV ([B, H, T, D]), summed over each kv head's group at the end, so
  // (batch, head) tasks never write the same memory.
  std::vector<float> dk_h(static_cast<size_t>(B * H * T * D)), dv_h(static_cast<size_t>(B * H * T * D));
  const int64_t nblocks = (T + kBlock - 1) / kBlock;
  ThePool().For(B * H, [&](int64_t bh) {
    const int64_t b = bh / H, h = bh % H, hk = h / s.groups;
    const float *mrow = mask + b * T;
    ConstMap Kall(k + (b * T * Hk + hk) * D, T, D, Strided(Hk * D));
    ConstMap Vall(v + (b * T * Hk + hk) * D, T, D, Strided(Hk * D));
    Eigen::Map<RowMajor> dK(dk_h.data() + bh * T * D, T, D), dV(dv_h.data() + bh * T * D, T, D);
    dK.setZero();
    dV.setZero();
    thread_local RowMajor P, dP;
    thread_local Eigen::VectorXf Drow;
    for (int64_t blk = 0; blk < nblocks; blk++) {
      const int64_t r0 = blk * kBlock, r1 = std::min(T, r0 + kBlock), rows = r1 - r0;
      const int64_t off = ((b * T + r0) * H + h) * D;
      ConstMap Q(q + off, rows, D, Strided(H * D));
      ConstMap O(out + off, rows, D, Strided(H * D));
      ConstMap dO(dout + off, rows, D, Strided(H * D));
      MutMap dQ(dq + off, rows, D, Strided(H * D));
      auto K = Kall.topRows(r1);
      auto V = Vall.topRows(r1);
      const float *L = lse + (b * H + h) * T + r0;
      P.resize(rows, r1);
      P.noalias() = Q * K.transpose();
      MaskScores(P, r0, mrow);
      for (int64_t i = 0; i < rows; i++) {
        float *row = P.data() + i * r1;
        if (L[i] == -std::numeric_limits<float>::infinity()) {
          std::fill(row, row + r1, 0.f);
          continue;
        }
        for (int64_t j = 0; j < r1; j++) row[j] = std::exp(row[j] - L[i]);  // exp(-inf) = 0
      }
      dP.resize(rows, r1);
      dP.noalias() = dO * V.transpose();
      Drow = (dO.array() * O.array()).rowwise().sum();
      for (int64_t i = 0; i < rows; i++) {
        float *prow = P.data() + i * r1;
        float *drow = dP.data() + i * r1;
        const float di = Drow[i];
        for (int64_t j = 0; j < r1; j++) drow[j] = prow[j] * (drow[j] - di);  // dS
      }
      dV.topRows(r1).noalias() += P.transpose() * dO;
      dQ.noalias() = dP * K;
      dK.topRows(r1).noalias() += dP.transpose() * Q;
    }
  });
  // Sum the group's heads into dk, dv [B, T, Hk, D].
  ParallelRanges(B * T, 16, [&](int64_t s0, int64_t s1) {
    for (int64_t bt = s0; bt < s1; bt++) {
      const int64_t b = bt / T, t = bt % T;
      for (int64_t hk = 0; hk < Hk; hk++) {
        float *dkr = dk + (bt * Hk + hk) * D, *dvr = dv + (bt * Hk + hk) * D;
        std::fill(dkr, dkr + D, 0.f);
        std::fill(dvr, dvr + D, 0.f);
        for (int64_t g = 0; g < s.groups; g++) {
          const int64_t h = hk * s.groups + g;
          const float *sk = dk_h.data() + ((b * H + h) * T + t) * D;
          const float *sv = dv_h.data() + ((b * H + h) * T + t) * D;
          for (int64_t d = 0; d < D; d++) {
            dkr[d] += sk[d];
            dvr[d] += sv[d];
          }
        }
      }
    }
  });
}

// --- RMSNorm -------------------------------------------------------------------------------

struct RmsNormState {
  float eps;
};

void *RmsNormCreate(TF_OpKernelConstruction *ctx) {
  auto *st = new RmsNormState{1e-6f};
  TF_Status *s = TF_NewStatus();
  TF_OpKernelConstruction_GetAttrFloat(ctx, "eps", &st->eps, s);
  if (TF_GetCode(s) != TF_OK) TF_OpKernelConstruction_Failure(ctx, s);
  TF_DeleteStatus(s);
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

void RmsNormCompute(void *state, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitRmsNorm")) return;
  int64_t N, C;
  if (!CheckRows(ctx, in.t[0], in.t[1], N, C, "PrmkitRmsNorm")) return;
  const float eps = static_cast<RmsNormState *>(state)->eps;
  const float *x = Data(in.t[0]), *w = Data(in.t[1]);
  Outputs outs;
  float *y = outs.Add(ctx, {N, C});
  float *rstd = y ? outs.Add(ctx, {N}) : nullptr;
  if (!rstd) return;
  ParallelRanges(N, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float *xr = x + r * C;
      float *yr = y + r * C;
      float ss = 0.f;
      for (int64_t c = 0; c < C; c++) ss += xr[c] * xr[c];
      const float rs = 1.f / std::sqrt(ss / static_cast<float>(C) + eps);
      rstd[r] = rs;
      for (int64_t c = 0; c < C; c++) yr[c] = xr[c] * rs * w[c];
    }
  });
}

void RmsNormGradCompute(void *, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitRmsNormGrad")) return;
  int64_t N, C;
  if (!CheckRows(ctx, in.t[1], in.t[2], N, C, "PrmkitRmsNormGrad")) return;
  if (Dims(in.t[0]) != Dims(in.t[1]) || Dims(in.t[3]) != std::vector<int64_t>{N}) {
    Fail(ctx, "PrmkitRmsNormGrad: dy must be shaped like x and rstd [N]");
    return;
  }
  const float *dy = Data(in.t[0]), *x = Data(in.t[1]), *w = Data(in.t[2]), *rstd = Data(in.t[3]);
  Outputs outs;
  float *dx = outs.Add(ctx, {N, C});
  float *dw = dx ? outs.Add(ctx, {C}) : nullptr;
  if (!dw) return;
  // dw is a column sum: each chunk of rows sums into its own row of `partial`.
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(ThePool().size() * 4, N / 8));
  const int64_t per = (N + chunks - 1) / chunks;
  std::vector<float> partial(static_cast<size_t>(chunks * C), 0.f);
  ThePool().For(chunks, [&](int64_t ch) {
    const int64_t r0 = ch * per, r1 = std::min(N, r0 + per);
    float *pw = partial.data() + ch * C;
    for (int64_t r = r0; r < r1; r++) {
      const float *xr = x + r * C, *dyr = dy + r * C;
      float *dxr = dx + r * C;
      const float rs = rstd[r];
      float dot = 0.f;  // sum(dy * w * xhat)
      for (int64_t c = 0; c < C; c++) {
        const float xhat = xr[c] * rs;
        pw[c] += dyr[c] * xhat;
        dot += dyr[c] * w[c] * xhat;
      }
      const float mean = dot / static_cast<float>(C);
      for (int64_t c = 0; c < C; c++) dxr[c] = rs * (dyr[c] * w[c] - xr[c] * rs * mean);
    }
  });
  std::fill(dw, dw + C, 0.f);
  for (int64_t ch = 0; ch < chunks; ch++) {
    const float *pw = partial.data() + ch * C;
    for (int64_t c = 0; c < C; c++) dw[c] += pw[c];
  }
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

inline float Sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

void SwiGluCompute(void *, TF_OpKernelContext *ctx) {
  Inputs in;
  if (!GetInputs(ctx, in, "PrmkitSwiGlu") || !CheckSame(ctx, in, "PrmkitSwiGlu")) return;
  const float *g = Data(in.t[0]), *u = Data(in.t[1]);
  const int64_t n = static_cast<int64_t>(TF_TensorElementCount(in.t[0]));
  Outputs outs;
  float *y = outs.Add(ctx, Dims(in.t[0]));
  if (!y) return;
  ParallelRanges(n, 4096, [&](int64_t s0, int64_t s1) {
    for (int64_t i = s0; i < s1; i++) y[i] = g[i] * Sigmoid(g[i]) * u[i];
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
  ParallelRanges(n, 4096, [&](int64_t s0, int64_t s1) {
    for (int64_t i = s0; i < s1; i++) {
      const float sg = Sigmoid(g[i]), silu = g[i] * sg;
      du[i] = dy[i] * silu;
      dg[i] = dy[i] * u[i] * (sg + silu * (1.f - sg));
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
        RegisterOp("PrmkitRmsNorm", {"x: float", "w: float"}, {"y: float", "rstd: float"}, {"eps: float"}, RmsNormCreate,
                   RmsNormCompute, RmsNormDelete, error) &&
        RegisterOp("PrmkitRmsNormGrad", {"dy: float", "x: float", "w: float", "rstd: float"}, {"dx: float", "dw: float"}, {},
                   NoState, RmsNormGradCompute, NoDelete, error) &&
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
  const char *names[] = {"PrmkitAttention", "PrmkitAttentionGrad", "PrmkitRmsNorm", "PrmkitRmsNormGrad", "PrmkitSwiGlu", "PrmkitSwiGluGrad"};
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
