//===- Emulator.cpp - a SIMT emulator for runtime/cuda's kernels ----------===//

#include "Emulator.h"

#include "w4a4/cuda/Emulated.h"

#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include <ucontext.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define W4A4_EMU_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define W4A4_EMU_ASAN 1
#endif
#ifdef W4A4_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace w4a4::cuda::emu {

Coord fragA(int k, int lane, int reg, int elem) {
  int gid = lane >> 2, tig = lane & 3, per = k == 64 ? 8 : 4;
  return {gid + 8 * (reg & 1), tig * per + elem + (k / 2) * (reg >> 1)};
}
Coord fragB(int k, int lane, int reg, int elem) {
  int gid = lane >> 2, tig = lane & 3, per = k == 64 ? 8 : 4;
  return {tig * per + elem + (k / 2) * reg, gid};
}
Coord fragC(int lane, int reg) {
  int gid = lane >> 2, tig = lane & 3;
  return {gid + 8 * (reg >> 1), tig * 2 + (reg & 1)};
}

namespace {

constexpr size_t kStackBytes = 256 * 1024;

struct Copy {
  unsigned char *dst;
  unsigned char bytes[16];
};

struct Fiber {
  ucontext_t context;
  std::unique_ptr<char[]> stack;
  int tid = 0;
  bool done = false, waiting = false;
  std::vector<Copy> open;
  std::deque<std::vector<Copy>> committed;
};

enum class Collective { None, Shuffle, MmaS4, MmaS8 };
const char *collectiveName(Collective c) {
  switch (c) {
  case Collective::Shuffle:
    return "shfl.sync";
  case Collective::MmaS4:
    return "mma.sync m16n8k64 s4";
  case Collective::MmaS8:
    return "mma.sync m16n8k32 s8";
  default:
    return "nothing";
  }
}

struct Warp {
  int lanes = 32, arrived = 0;
  unsigned generation = 0;
  Collective kind = Collective::None;
  uint32_t a[32][4], b[32][2];
  int32_t c[32][4], d[32][4];
  float in[32], out[32];
  int mask[32];
};

struct Machine {
  LaunchConfig config;
  const std::function<void()> *kernel = nullptr;
  int bx = 0, by = 0, live = 0;
  std::vector<Fiber> fibers;
  std::vector<unsigned char> shared;
  std::vector<Warp> warps;
  int barrierArrived = 0;
  unsigned barrierGeneration = 0;
  ucontext_t scheduler;
  Fiber *current = nullptr;
  std::string error;
  uint64_t events = 0;
#ifdef W4A4_EMU_ASAN
  const void *schedulerStack = nullptr;
  size_t schedulerStackSize = 0;
#endif
};

thread_local Machine *machine = nullptr;

Machine &m() { return *machine; }

/// Back to the scheduler (from a fiber).
void yield() {
  Fiber *f = m().current;
#ifdef W4A4_EMU_ASAN
  void *fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, m().schedulerStack,
                                 m().schedulerStackSize);
#endif
  swapcontext(&f->context, &m().scheduler);
#ifdef W4A4_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

void setError(const std::string &what) {
  Machine &mm = m();
  if (mm.error.empty())
    mm.error = what + " (block (" + std::to_string(mm.bx) + ", " +
               std::to_string(mm.by) + "), thread " +
               std::to_string(mm.current->tid) + ")";
}

/// Leaves the fiber for good (the scheduler stops at the first error).
[[noreturn]] void abandon() {
  for (;;)
    yield();
}

// The message is built and stored in a statement of its own: the fiber is
// never resumed, so temporaries alive across abandon() would leak.
#define W4A4_EMU_FAIL(what)                                                    \
  do {                                                                         \
    setError(what);                                                            \
    abandon();                                                                 \
  } while (0)

template <class Pred> void waitWhile(Pred pred) {
  Fiber *f = m().current;
  f->waiting = true;
  while (pred())
    yield();
  f->waiting = false;
}

void fiberEntry() {
#ifdef W4A4_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &m().schedulerStack,
                                  &m().schedulerStackSize);
#endif
  (*m().kernel)();
  Machine &mm = m();
  Fiber *f = mm.current;
  if (!f->open.empty() || !f->committed.empty()) {
    // Outstanding copies complete eventually; nothing can read them now.
    f->open.clear();
    f->committed.clear();
  }
  if (mm.barrierArrived > 0)
    W4A4_EMU_FAIL("a thread exited while others wait at __syncthreads");
  if (mm.warps[f->tid / 32].arrived > 0)
    W4A4_EMU_FAIL(
        std::string("a thread exited while lanes of its warp wait at ") +
        collectiveName(mm.warps[f->tid / 32].kind));
  f->done = true;
  --mm.live;
  ++mm.events;
  // The last switch out of this fiber: its stack is reused by the next
  // block's fiber, so ASan's fake stack (detect_stack_use_after_return) is
  // released here (a null save slot), not kept for a resume that never
  // comes: kept, they grew to 20 GB over a model's launches.
#ifdef W4A4_EMU_ASAN
  __sanitizer_start_switch_fiber(nullptr, mm.schedulerStack,
                                 mm.schedulerStackSize);
#endif
  swapcontext(&f->context, &mm.scheduler);
}

std::string runBlock(Machine &mm) {
  mm.live = mm.config.threads;
  mm.barrierArrived = 0;
  if (!mm.shared.empty())
    std::memset(mm.shared.data(), kPoison, mm.shared.size());
  for (size_t w = 0; w < mm.warps.size(); ++w) {
    Warp &warp = mm.warps[w];
    warp.lanes =
        std::min<int>(32, mm.config.threads - static_cast<int>(w) * 32);
    warp.arrived = 0;
    warp.kind = Collective::None;
  }
  for (Fiber &f : mm.fibers) {
    f.done = f.waiting = false;
    f.open.clear();
    f.committed.clear();
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack.get();
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = &mm.scheduler;
    makecontext(&f.context, fiberEntry, 0);
  }
  for (;;) {
    uint64_t before = mm.events;
    int waiting = 0;
    for (Fiber &f : mm.fibers) {
      if (f.done)
        continue;
      mm.current = &f;
#ifdef W4A4_EMU_ASAN
      void *fake = nullptr;
      __sanitizer_start_switch_fiber(&fake, f.stack.get(), kStackBytes);
#endif
      swapcontext(&mm.scheduler, &f.context);
#ifdef W4A4_EMU_ASAN
      __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
      if (!mm.error.empty())
        return mm.error;
      waiting += f.waiting ? 1 : 0;
    }
    if (mm.live == 0)
      return "";
    if (mm.events == before && waiting == mm.live) {
      int atBarrier = mm.barrierArrived;
      return "deadlock in block (" + std::to_string(mm.bx) + ", " +
             std::to_string(mm.by) + "): " + std::to_string(atBarrier) +
             " of " + std::to_string(mm.live) +
             " threads wait at __syncthreads, the rest at warp collectives "
             "some lanes never reach";
    }
  }
}

/// A warp collective: each lane stores its operands; the last to arrive
/// computes every lane's result; then each lane loads its own.
template <class Store, class Compute, class Load>
void collective(Collective kind, Store store, Compute compute, Load load) {
  Machine &mm = m();
  int tid = mm.current->tid, lane = tid & 31;
  Warp &w = mm.warps[tid / 32];
  if (w.arrived == 0)
    w.kind = kind;
  else if (w.kind != kind)
    W4A4_EMU_FAIL(std::string("lanes of warp ") + std::to_string(tid / 32) +
                  " at different collectives: " + collectiveName(w.kind) +
                  " and " + collectiveName(kind));
  store(w, lane);
  ++mm.events;
  unsigned generation = w.generation;
  if (++w.arrived == w.lanes) {
    compute(w);
    w.arrived = 0;
    ++w.generation;
    w.kind = Collective::None;
  } else {
    waitWhile([&] { return w.generation == generation; });
  }
  load(w, lane);
}

int32_t element(uint32_t reg, int bits, int e) {
  uint32_t raw = (reg >> (bits * e)) & ((1u << bits) - 1);
  int32_t v = static_cast<int32_t>(raw);
  return raw & (1u << (bits - 1)) ? v - (1 << bits) : v;
}

void mmaCompute(Warp &w, int k, int bits) {
  if (w.lanes != 32)
    W4A4_EMU_FAIL("mma.sync in a warp of " + std::to_string(w.lanes) +
                  " lanes");
  int per = 32 / bits;
  int32_t a[16][64] = {}, b[64][8] = {};
  int64_t d[16][8] = {};
  for (int lane = 0; lane < 32; ++lane) {
    for (int r = 0; r < 4; ++r)
      for (int e = 0; e < per; ++e) {
        Coord c = fragA(k, lane, r, e);
        a[c.row][c.col] = element(w.a[lane][r], bits, e);
      }
    for (int r = 0; r < 2; ++r)
      for (int e = 0; e < per; ++e) {
        Coord c = fragB(k, lane, r, e);
        b[c.row][c.col] = element(w.b[lane][r], bits, e);
      }
    for (int r = 0; r < 4; ++r) {
      Coord c = fragC(lane, r);
      d[c.row][c.col] = w.c[lane][r];
    }
  }
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j)
      for (int p = 0; p < k; ++p)
        d[i][j] += static_cast<int64_t>(a[i][p]) * b[p][j];
  for (int lane = 0; lane < 32; ++lane)
    for (int r = 0; r < 4; ++r) {
      Coord c = fragC(lane, r);
      // The hardware's int32 accumulator wraps.
      w.d[lane][r] =
          static_cast<int32_t>(static_cast<uint32_t>(d[c.row][c.col]));
    }
}

void mma(Collective kind, int32_t d[4], const uint32_t a[4],
         const uint32_t b[2], const int32_t c[4]) {
  collective(
      kind,
      [&](Warp &w, int lane) {
        std::memcpy(w.a[lane], a, sizeof(w.a[lane]));
        std::memcpy(w.b[lane], b, sizeof(w.b[lane]));
        std::memcpy(w.c[lane], c, sizeof(w.c[lane]));
      },
      [&](Warp &w) {
        mmaCompute(w, kind == Collective::MmaS4 ? 64 : 32,
                   kind == Collective::MmaS4 ? 4 : 8);
      },
      [&](Warp &w, int lane) { std::memcpy(d, w.d[lane], sizeof(w.d[lane])); });
}

} // namespace

std::string launch(const LaunchConfig &config,
                   const std::function<void()> &kernel) {
  if (machine)
    return "a kernel launch inside a kernel";
  if (config.threads < 1 || config.threads > 1024 || config.gridX < 1 ||
      config.gridY < 1)
    return "bad launch configuration: grid (" + std::to_string(config.gridX) +
           ", " + std::to_string(config.gridY) + "), " +
           std::to_string(config.threads) + " threads";
  Machine mm;
  mm.config = config;
  mm.kernel = &kernel;
  mm.fibers.resize(config.threads);
  for (int t = 0; t < config.threads; ++t) {
    mm.fibers[t].tid = t;
    mm.fibers[t].stack.reset(new char[kStackBytes]);
  }
  mm.shared.assign(config.sharedBytes, kPoison);
  mm.warps.resize((config.threads + 31) / 32);
  machine = &mm;
  std::string error;
  for (int by = 0; by < config.gridY && error.empty(); ++by)
    for (int bx = 0; bx < config.gridX && error.empty(); ++bx) {
      mm.bx = bx;
      mm.by = by;
      error = runBlock(mm);
    }
  machine = nullptr;
  return error;
}

// What Platform.cuh calls.

int threadX() { return m().current->tid; }
int blockX() { return m().bx; }
int blockY() { return m().by; }
int blockThreads() { return m().config.threads; }

void syncThreads() {
  Machine &mm = m();
  // Every thread of the block takes part (CUDA leaves a barrier some
  // threads skip or exited before undefined).
  if (mm.live != mm.config.threads)
    W4A4_EMU_FAIL("__syncthreads after " +
                  std::to_string(mm.config.threads - mm.live) +
                  " thread(s) of the block exited");
  ++mm.events;
  unsigned generation = mm.barrierGeneration;
  if (++mm.barrierArrived == mm.live) {
    mm.barrierArrived = 0;
    ++mm.barrierGeneration;
    return;
  }
  waitWhile([&] { return mm.barrierGeneration == generation; });
}

unsigned char *sharedBase() { return m().shared.data(); }

float shflXor(float v, int mask) {
  float result = 0;
  collective(
      Collective::Shuffle,
      [&](Warp &w, int lane) {
        w.in[lane] = v;
        w.mask[lane] = mask;
      },
      [&](Warp &w) {
        for (int lane = 0; lane < w.lanes; ++lane) {
          if (w.mask[lane] != w.mask[0])
            W4A4_EMU_FAIL("shfl.sync lanes with different masks");
          int from = lane ^ w.mask[lane];
          if (from >= w.lanes)
            W4A4_EMU_FAIL("shfl.sync.bfly from a lane past the warp");
          w.out[lane] = w.in[from];
        }
      },
      [&](Warp &w, int lane) { result = w.out[lane]; });
  return result;
}

void cpAsync16(void *sharedDst, const void *globalSrc, bool valid) {
  Machine &mm = m();
  auto *dst = static_cast<unsigned char *>(sharedDst);
  if (dst < mm.shared.data() || dst + 16 > mm.shared.data() + mm.shared.size())
    W4A4_EMU_FAIL("cp.async to an address outside the block's shared memory");
  if (reinterpret_cast<uintptr_t>(dst) % 16 ||
      (valid && reinterpret_cast<uintptr_t>(globalSrc) % 16))
    W4A4_EMU_FAIL("cp.async of 16 bytes on an address not 16-byte aligned");
  Copy c;
  c.dst = dst;
  if (valid)
    std::memcpy(c.bytes, globalSrc, 16);
  else
    std::memset(c.bytes, 0, 16);
  std::memset(dst, kPoison, 16);
  mm.current->open.push_back(c);
}

void cpAsyncCommit() {
  Fiber *f = m().current;
  f->committed.push_back(std::move(f->open));
  f->open.clear();
}

void cpAsyncWait(int pending) {
  Fiber *f = m().current;
  while (static_cast<int>(f->committed.size()) > pending) {
    for (const Copy &c : f->committed.front())
      std::memcpy(c.dst, c.bytes, 16);
    f->committed.pop_front();
  }
}

void mmaS4(int32_t d[4], const uint32_t a[4], const uint32_t b[2],
           const int32_t c[4]) {
  mma(Collective::MmaS4, d, a, b, c);
}

void mmaS8(int32_t d[4], const uint32_t a[4], const uint32_t b[2],
           const int32_t c[4]) {
  mma(Collective::MmaS8, d, a, b, c);
}

} // namespace w4a4::cuda::emu
