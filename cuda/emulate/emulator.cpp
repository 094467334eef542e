// inferzip CUDA emulator: runtime half (see cuda_runtime.h for the device half).
//
// Execution model. A launch runs on the host thread that makes it, block after block (in a
// seed-shuffled order when INFERZIP_CUDA_EMULATE_SEED is set). A block's threads are
// cooperative fibers with their own guard-paged stacks; a fiber runs until it reaches a
// scheduling point (__syncthreads, a warp shuffle) or exits, then the scheduler resumes the
// next runnable one. __syncthreads releases when every thread of the block waits at the same
// barrier; a shuffle completes when every lane its mask names has arrived at the same
// shuffle. When nothing can run and the block has not finished, the scheduler says why
// (divergent barriers, a barrier after exits, a shuffle waiting on a lane that waits
// elsewhere) and aborts.
//
// Memory. Device allocations are host allocations in a table: copies, memsets, frees and
// kernel pointer arguments are checked against it. Fresh device and shared memory is filled
// with seed-dependent bytes (cudaMalloc does not zero). Without ASan every allocation and
// shared array has canary redzones, checked after each block (shared) and launch (device);
// under ASan each has its exact size so ASan reports the first bad access itself.
//
// Devices. INFERZIP_CUDA_EMULATE_DEVICES=n devices answer, each with its own memory accounting.
// The emulator is stricter than CUDA with unified addressing: a kernel argument, a copy, a
// memset or a free that touches another device's memory than the calling thread's current
// one (cudaSetDevice) aborts, so code that forgets to select a device is caught.
#include "cuda/emulate/cuda_runtime.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define IZ_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IZ_EMU_ASAN 1
#endif
#endif
#ifndef IZ_EMU_ASAN
#define IZ_EMU_ASAN 0
#endif
#if IZ_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace iz_emu {

namespace {

// ---------------------------------------------------------------------------------
// Settings (read once).
struct Settings {
  bool seeded = false;
  uint64_t seed = 0;
  size_t smem_optin = 232448;  // H100: 227 KiB per block
  int devices = 1;
  bool stats = false;
  Settings() {
    if (const char* s = getenv("INFERZIP_CUDA_EMULATE_SEED"); s && *s) {
      seeded = true;
      seed = strtoull(s, nullptr, 0);
    }
    if (const char* s = getenv("INFERZIP_CUDA_EMULATE_SMEM"); s && *s) {
      long long v = strtoll(s, nullptr, 0);
      if (v < 1024 || v > (1 << 20)) {
        fprintf(stderr, "inferzip CUDA emulator: INFERZIP_CUDA_EMULATE_SMEM=%s is outside [1024, 1048576]\n", s);
        abort();
      }
      smem_optin = size_t(v);
    }
    if (const char* s = getenv("INFERZIP_CUDA_EMULATE_DEVICES"); s && *s) {
      devices = atoi(s);
      if (devices < 0 || devices > 64) {
        fprintf(stderr, "inferzip CUDA emulator: INFERZIP_CUDA_EMULATE_DEVICES=%s is outside [0, 64]\n", s);
        abort();
      }
    }
    if (const char* s = getenv("INFERZIP_CUDA_EMULATE_STATS"); s && *s && *s != '0') stats = true;
  }
};
const Settings& Cfg() {
  static const Settings s;
  return s;
}

constexpr size_t kStaticSharedLimit = 48 * 1024;   // static __shared__ per block
constexpr size_t kDefaultDynamicLimit = 48 * 1024;  // dynamic without cudaFuncSetAttribute
constexpr size_t kTotalGlobalMem = size_t(16) << 30;
constexpr size_t kRedzone = 64;
constexpr uint8_t kCanary = 0xCB;

uint64_t SplitMix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Fresh memory: seed-dependent bytes, different for every allocation.
std::atomic<uint64_t> g_fill_counter{0};
void FillFresh(void* p, size_t n) {
  uint64_t s = Cfg().seed * 0x100000001B3ull + g_fill_counter.fetch_add(1) * 0x9E3779B97F4A7C15ull;
  uint8_t* b = static_cast<uint8_t*>(p);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = SplitMix(s);
    memcpy(b + i, &v, 8);
  }
  if (i < n) {
    uint64_t v = SplitMix(s);
    memcpy(b + i, &v, n - i);
  }
}

// ---------------------------------------------------------------------------------
// Buffers with redzones (or exact-size ones under ASan).
struct Buffer {
  uint8_t* raw = nullptr;
  uint8_t* data = nullptr;
  size_t size = 0;

  static Buffer Make(size_t size, size_t align) {
    Buffer b;
    b.size = size;
    align = std::max<size_t>(align, 16);
#if IZ_EMU_ASAN
    b.raw = static_cast<uint8_t*>(::operator new(std::max<size_t>(size, 1), std::align_val_t(align)));
    b.data = b.raw;
#else
    size_t front = (kRedzone + align - 1) / align * align;
    b.raw = static_cast<uint8_t*>(::operator new(front + size + kRedzone, std::align_val_t(align)));
    b.data = b.raw + front;
    memset(b.raw, kCanary, front);
    memset(b.data + size, kCanary, kRedzone);
#endif
    return b;
  }
  // Which redzone was written, or null.
  const char* Damaged() const {
#if !IZ_EMU_ASAN
    for (uint8_t* p = raw; p < data; ++p)
      if (*p != kCanary) return "before its start";
    for (size_t i = 0; i < kRedzone; ++i)
      if (data[size + i] != kCanary) return "past its end";
#endif
    return nullptr;
  }
  void Release(size_t align) {
    if (raw) ::operator delete(raw, std::align_val_t(std::max<size_t>(align, 16)));
    raw = data = nullptr;
  }
};

// ---------------------------------------------------------------------------------
// Device memory table.
struct Allocation {
  Buffer buf;
  int device = 0;
};
std::mutex g_mem_mu;
std::map<uintptr_t, Allocation>& Table() {
  static auto* t = new std::map<uintptr_t, Allocation>();  // never destroyed: frees may run at exit
  return *t;
}
size_t g_used[64];

// The allocation holding [p, p + n) (n may be 0), or null when p is not device memory.
// A range that starts inside an allocation and leaves it is fatal.
const Allocation* Lookup(const void* p, size_t n, const char* what) {
  auto& t = Table();
  auto it = t.upper_bound(reinterpret_cast<uintptr_t>(p));
  if (it == t.begin()) return nullptr;
  --it;
  uintptr_t base = it->first, q = reinterpret_cast<uintptr_t>(p);
  size_t size = it->second.buf.size;
  if (q > base + size) return nullptr;
  if (q == base + size && n > 0) return nullptr;
  if (n > size - (q - base)) {
    Die("%s: the range [%p, %p + %zu) runs %zu bytes past the end of the device allocation [%p, +%zu)", what, p, p, n,
        size_t(n - (size - (q - base))), reinterpret_cast<void*>(base), size);
  }
  return &it->second;
}

int& CurrentDevice() {
  thread_local int device = 0;
  return device;
}
cudaError_t& LastError() {
  thread_local cudaError_t err = cudaSuccess;
  return err;
}
cudaError_t Ret(cudaError_t e) {
  if (e != cudaSuccess) LastError() = e;
  return e;
}

void CheckDeviceRedzones(const char* after) {
#if !IZ_EMU_ASAN
  std::lock_guard<std::mutex> lock(g_mem_mu);
  for (auto& [base, a] : Table()) {
    if (const char* where = a.buf.Damaged())
      Die("device allocation [%p, +%zu) was written %s (noticed after %s)", reinterpret_cast<void*>(base), a.buf.size,
          where, after);
  }
#else
  (void)after;
#endif
}

// ---------------------------------------------------------------------------------
// Per-kernel attributes and statistics.
std::mutex g_func_mu;
std::map<const void*, size_t>& FuncDynLimit() {
  static auto* m = new std::map<const void*, size_t>();
  return *m;
}
struct Stats {
  uint64_t launches = 0, blocks = 0, threads = 0, barriers = 0, shuffles = 0;
  size_t max_smem = 0;
};
std::map<std::string, Stats>& KernelStats() {
  static auto* m = new std::map<std::string, Stats>();
  return *m;
}
void PrintStats() {
  std::lock_guard<std::mutex> lock(g_func_mu);
  for (auto& [name, s] : KernelStats())
    fprintf(stderr,
            "inferzip CUDA emulator: %-22s launches %8llu  blocks %10llu  threads %12llu  barriers %10llu  shuffles %10llu  "
            "max dynamic smem %zu\n",
            name.c_str(), (unsigned long long)s.launches, (unsigned long long)s.blocks, (unsigned long long)s.threads,
            (unsigned long long)s.barriers, (unsigned long long)s.shuffles, s.max_smem);
}

// ---------------------------------------------------------------------------------
// Fibers.
#if defined(__x86_64__)
extern "C" void iz_emu_switch(void** save_sp, void* to_sp);
extern "C" void iz_emu_trampoline();
// Saves the callee-saved registers on the current stack, stores the stack pointer in
// *save_sp, and resumes the context saved at to_sp. MXCSR and the x87 control word are not
// switched (loading them is slow, and neither the kernels nor the emulator change them).
asm(R"(
  .text
  .globl iz_emu_switch
  .hidden iz_emu_switch
  .type iz_emu_switch,@function
iz_emu_switch:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size iz_emu_switch,.-iz_emu_switch

  .globl iz_emu_trampoline
  .hidden iz_emu_trampoline
  .type iz_emu_trampoline,@function
iz_emu_trampoline:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%r13
  ud2
  .cfi_endproc
  .size iz_emu_trampoline,.-iz_emu_trampoline
)");
#endif

enum class State : uint8_t { Runnable, Barrier, Shuffle, Done };

struct Fiber {
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
  uint8_t* stack_lo = nullptr;
  size_t stack_size = 0;
  void* asan_fake = nullptr;
  ThreadCtx ctx;
  unsigned linear = 0;
  State state = State::Runnable;
  const char* wait_file = nullptr;
  int wait_line = 0;
};

struct WarpSlot {
  unsigned arrived = 0;
  unsigned exited = 0;  // lanes whose thread has returned
  unsigned mask = 0;
  const char* file = nullptr;
  int line = 0;
  ShuffleKind kind = ShuffleKind::Idx;
  int arg = 0, width = 32;
  size_t bytes = 0;
  uint64_t value[32];
  uint8_t src[32];
  uint64_t result[32];
};

struct Shared {
  const void* key;
  Buffer buf;
  size_t align;
  const char* name;
  const char* file;
  int line;
};

struct Block;

// Per host thread: the stacks, the scheduler's context and what runs now.
struct Executor {
  std::vector<uint8_t*> stacks;
  size_t stack_size = 0, guard = 0;
#if defined(__x86_64__)
  void* sched_sp = nullptr;
#else
  ucontext_t sched_uc;
#endif
  const void* sched_bottom = nullptr;
  size_t sched_size = 0;
  void* sched_fake = nullptr;
  Fiber* current = nullptr;
  Block* block = nullptr;

  Executor() {
    guard = size_t(sysconf(_SC_PAGESIZE));
    stack_size = IZ_EMU_ASAN ? (512u << 10) : (128u << 10);
  }
  ~Executor() {
    for (uint8_t* s : stacks) munmap(s, stack_size + guard);
  }
  uint8_t* Stack(size_t i) {
    while (stacks.size() <= i) {
      void* p = mmap(nullptr, stack_size + guard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) Die("could not map a %zu-byte fiber stack", stack_size);
      if (mprotect(p, guard, PROT_NONE) != 0) Die("could not protect a fiber stack guard page");
      stacks.push_back(static_cast<uint8_t*>(p));
    }
    return stacks[i] + guard;
  }
};
thread_local Executor* t_exec = nullptr;
Executor& Exec() {
  if (!t_exec) t_exec = new Executor();  // leaked at thread exit only if the thread launched kernels
  return *t_exec;
}

struct Block {
  const LaunchInfo* info;
  void (*body)(void*);
  void* closure;
  std::vector<Fiber>* fibers;
  unsigned nthreads;
  unsigned exited = 0;
  std::vector<WarpSlot>* warps;
  std::vector<Shared> statics;
  size_t static_bytes = 0;
  Buffer dynamic;
  uint64_t barriers = 0, shuffles = 0;
};

std::string Where(const Fiber* f) {
  char buf[256];
  const ThreadCtx& c = f->ctx;
  snprintf(buf, sizeof buf, "block (%u,%u,%u) thread (%u,%u,%u)", c.block_idx.x, c.block_idx.y, c.block_idx.z,
           c.thread_idx.x, c.thread_idx.y, c.thread_idx.z);
  return buf;
}

void Resume(Executor& ex, Fiber* f) {
  ex.current = f;
#if IZ_EMU_ASAN
  __sanitizer_start_switch_fiber(&ex.sched_fake, f->stack_lo, f->stack_size);
#endif
#if defined(__x86_64__)
  iz_emu_switch(&ex.sched_sp, f->sp);
#else
  swapcontext(&ex.sched_uc, &f->uc);
#endif
#if IZ_EMU_ASAN
  __sanitizer_finish_switch_fiber(ex.sched_fake, nullptr, nullptr);
#endif
  ex.current = nullptr;
}

void Suspend(Executor& ex, Fiber* f) {
#if IZ_EMU_ASAN
  __sanitizer_start_switch_fiber(&f->asan_fake, ex.sched_bottom, ex.sched_size);
#endif
#if defined(__x86_64__)
  iz_emu_switch(&f->sp, ex.sched_sp);
#else
  swapcontext(&f->uc, &ex.sched_uc);
#endif
#if IZ_EMU_ASAN
  __sanitizer_finish_switch_fiber(f->asan_fake, &ex.sched_bottom, &ex.sched_size);
#endif
}

void FiberMain(Fiber* f) {
  Executor& ex = *t_exec;
#if IZ_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &ex.sched_bottom, &ex.sched_size);
#endif
  ex.block->body(ex.block->closure);
  f->state = State::Done;
  ex.block->exited++;
  (*ex.block->warps)[f->linear >> 5].exited |= 1u << (f->linear & 31);
#if IZ_EMU_ASAN
  __sanitizer_start_switch_fiber(nullptr, ex.sched_bottom, ex.sched_size);
#endif
#if defined(__x86_64__)
  iz_emu_switch(&f->sp, ex.sched_sp);
#else
  setcontext(&ex.sched_uc);
#endif
  __builtin_unreachable();
}

#if !defined(__x86_64__)
void FiberMainU(unsigned lo, unsigned hi) {
  FiberMain(reinterpret_cast<Fiber*>((uintptr_t(hi) << 32) | lo));
}
#endif

void StartFiber(Fiber* f, uint8_t* stack, size_t size) {
  f->stack_lo = stack;
  f->stack_size = size;
#if IZ_EMU_ASAN
  __asan_unpoison_memory_region(stack, size);
#endif
#if defined(__x86_64__)
  // After the six pops and the ret into the trampoline, rsp = top (16-byte aligned), so the
  // trampoline's call enters FiberMain with the ABI's alignment.
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + size - 64) & ~uintptr_t(15);
  uint64_t* sp = reinterpret_cast<uint64_t*>(top - 56);
  sp[0] = 0;                                            // r15
  sp[1] = 0;                                            // r14
  sp[2] = reinterpret_cast<uint64_t>(&FiberMain);       // r13: function
  sp[3] = reinterpret_cast<uint64_t>(f);                // r12: argument
  sp[4] = 0;                                            // rbx
  sp[5] = 0;                                            // rbp (ends frame-pointer walks)
  sp[6] = reinterpret_cast<uint64_t>(&iz_emu_trampoline);
  f->sp = sp;
#else
  getcontext(&f->uc);
  f->uc.uc_stack.ss_sp = stack;
  f->uc.uc_stack.ss_size = size;
  f->uc.uc_link = nullptr;
  uintptr_t v = reinterpret_cast<uintptr_t>(f);
  makecontext(&f->uc, reinterpret_cast<void (*)()>(&FiberMainU), 2, unsigned(v), unsigned(v >> 32));
#endif
}

std::string Lanes(unsigned bits, unsigned base) {
  std::string s;
  for (unsigned i = 0; i < 32; ++i) {
    if (!(bits >> i & 1)) continue;
    unsigned j = i;
    while (j + 1 < 32 && (bits >> (j + 1) & 1)) ++j;
    if (!s.empty()) s += ",";
    s += std::to_string(base + i);
    if (j > i) s += "-" + std::to_string(base + j);
    i = j;
  }
  return s;
}

// Groups threads by what they wait at, for messages: "threads 0-31 at file:line".
std::string DescribeWaits(const std::vector<Fiber>& fibers, unsigned n) {
  std::map<std::string, std::vector<unsigned>> groups;
  for (unsigned i = 0; i < n; ++i) {
    const Fiber& f = fibers[i];
    std::string key;
    switch (f.state) {
      case State::Done: key = "exited"; break;
      case State::Barrier: key = std::string("__syncthreads at ") + f.wait_file + ":" + std::to_string(f.wait_line); break;
      case State::Shuffle: key = std::string("a warp shuffle at ") + f.wait_file + ":" + std::to_string(f.wait_line); break;
      case State::Runnable: key = "running"; break;
    }
    groups[key].push_back(i);
  }
  std::string out;
  for (auto& [key, ids] : groups) {
    std::string list;
    for (size_t k = 0; k < ids.size(); ++k) {
      size_t j = k;
      while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
      if (!list.empty()) list += ",";
      list += std::to_string(ids[k]);
      if (j > k) list += "-" + std::to_string(ids[j]);
      k = j;
    }
    out += "\n    threads " + list + ": " + key;
  }
  return out;
}

void Shuffle(std::vector<uint32_t>& order, uint64_t& rng) {
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[SplitMix(rng) % i]);
}

void CheckShared(Block& b) {
  const LaunchInfo& li = *b.info;
  for (const Shared& s : b.statics) {
    if (const char* where = s.buf.Damaged())
      Die("kernel %s (launched at %s:%d): __shared__ array '%s' (%s:%d, %zu bytes) was written %s", li.name, li.file,
          li.line, s.name, s.file, s.line, s.buf.size, where);
  }
  if (const char* where = b.dynamic.Damaged())
    Die("kernel %s (launched at %s:%d): dynamic shared memory (%zu bytes, as launched) was written %s: the launch's "
        "shared-memory size is smaller than what the kernel uses",
        li.name, li.file, li.line, b.dynamic.size, where);
}

void RunBlock(Executor& ex, Block& b, uint3 bidx, uint64_t& rng) {
  const LaunchInfo& li = *b.info;
  std::vector<Fiber>& fibers = *b.fibers;
  const unsigned n = b.nthreads;
  b.exited = 0;
  b.statics.clear();
  b.static_bytes = 0;
  FillFresh(b.dynamic.data, b.dynamic.size);
  for (auto& w : *b.warps) w.arrived = w.exited = 0;
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = fibers[i];
    f.linear = i;
    f.ctx.thread_idx = uint3{i % li.block.x, (i / li.block.x) % li.block.y, i / (li.block.x * li.block.y)};
    f.ctx.block_idx = bidx;
    f.ctx.block_dim = li.block;
    f.ctx.grid_dim = li.grid;
    f.state = State::Runnable;
    uint8_t* stack = ex.Stack(i);
    StartFiber(&f, stack, ex.stack_size);
  }
  std::vector<uint32_t> order(n);
  for (unsigned i = 0; i < n; ++i) order[i] = i;
  if (Cfg().seeded) Shuffle(order, rng);
  ex.block = &b;
  for (;;) {
    bool runnable = false;
    for (uint32_t i : order) {
      if (fibers[i].state != State::Runnable) continue;
      Resume(ex, &fibers[i]);
      runnable = true;
    }
    if (b.exited == n) break;
    if (runnable) continue;
    // Nothing can run: a barrier is complete, or the block is stuck.
    unsigned at_shuffle = 0;
    const Fiber* first = nullptr;
    bool same_site = true;
    for (unsigned i = 0; i < n; ++i) {
      const Fiber& f = fibers[i];
      if (f.state == State::Shuffle) ++at_shuffle;
      if (f.state != State::Barrier) continue;
      if (!first) first = &f;
      else if (f.wait_line != first->wait_line || (f.wait_file != first->wait_file && strcmp(f.wait_file, first->wait_file) != 0))
        same_site = false;
    }
    if (at_shuffle) {
      Die("kernel %s (launched at %s:%d), block (%u,%u,%u): deadlock: a warp shuffle waits for lanes that wait "
          "elsewhere or exited:%s",
          li.name, li.file, li.line, bidx.x, bidx.y, bidx.z, DescribeWaits(fibers, n).c_str());
    }
    if (b.exited) {
      Die("kernel %s (launched at %s:%d), block (%u,%u,%u): __syncthreads reached after %u of the block's %u threads "
          "exited (the barrier would never complete for them):%s",
          li.name, li.file, li.line, bidx.x, bidx.y, bidx.z, b.exited, n, DescribeWaits(fibers, n).c_str());
    }
    if (!same_site) {
      Die("kernel %s (launched at %s:%d), block (%u,%u,%u): barrier divergence: the block's threads wait at different "
          "__syncthreads:%s",
          li.name, li.file, li.line, bidx.x, bidx.y, bidx.z, DescribeWaits(fibers, n).c_str());
    }
    ++b.barriers;
    for (unsigned i = 0; i < n; ++i) fibers[i].state = State::Runnable;
    if (Cfg().seeded) Shuffle(order, rng);
  }
  ex.block = nullptr;
  CheckShared(b);
  for (Shared& s : b.statics) s.buf.Release(s.align);
  b.statics.clear();
}

}  // namespace

// ---------------------------------------------------------------------------------
// Device-side entry points.

void Die(const char* fmt, ...) {
  fflush(stdout);
  fprintf(stderr, "\ninferzip CUDA emulator: ");
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (t_exec && t_exec->current) fprintf(stderr, "\n  (in %s)", Where(t_exec->current).c_str());
  fprintf(stderr, "\n");
  fflush(stderr);
  abort();
}

ThreadCtx* Current() {
  Executor* ex = t_exec;
  if (__builtin_expect(!ex || !ex->current, 0)) Die("a CUDA built-in variable was read outside a kernel");
  return &ex->current->ctx;
}

void SyncThreads(const char* file, int line) {
  Executor* ex = t_exec;
  if (!ex || !ex->current) Die("__syncthreads() called outside a kernel (%s:%d)", file, line);
  Fiber* f = ex->current;
  Block& b = *ex->block;
  if (b.exited) {
    Die("kernel %s: __syncthreads at %s:%d reached after %u of the block's %u threads exited", b.info->name, file, line,
        b.exited, b.nthreads);
  }
  f->state = State::Barrier;
  f->wait_file = file;
  f->wait_line = line;
  Suspend(*ex, f);
}

void Shuffle(unsigned mask, void* value, size_t bytes, ShuffleKind kind, int arg, int width, const char* file, int line) {
  Executor* ex = t_exec;
  if (!ex || !ex->current) Die("warp shuffle called outside a kernel (%s:%d)", file, line);
  Fiber* f = ex->current;
  Block& b = *ex->block;
  const char* kname = b.info->name;
  const unsigned lane = f->linear & 31, warp = f->linear >> 5, base = warp * 32;
  const unsigned present = b.nthreads - base >= 32 ? 0xFFFFFFFFu : ((1u << (b.nthreads - base)) - 1);
  if (width <= 0 || width > 32 || (width & (width - 1)))
    Die("kernel %s: shuffle at %s:%d with width %d (must be a power of two <= 32)", kname, file, line, width);
  if (!(mask >> lane & 1))
    Die("kernel %s: lane %u calls the shuffle at %s:%d with mask 0x%08x, which does not name it", kname, lane, file, line,
        mask);
  if (mask & ~present)
    Die("kernel %s: the shuffle at %s:%d names lanes %s in mask 0x%08x, which the block (%u threads) does not have",
        kname, file, line, Lanes(mask & ~present, base).c_str(), mask, b.nthreads);
  std::vector<Fiber>& fibers = *b.fibers;
  WarpSlot& w = (*b.warps)[warp];
  if (unsigned gone = mask & w.exited) {
    const unsigned l = unsigned(__builtin_ctz(gone));
    Die("kernel %s: the shuffle at %s:%d names lane %u (thread %u) in mask 0x%08x, but that thread has exited", kname,
        file, line, l, base + l, mask);
  }
  // Source lane, per the CUDA semantics of each variant; a lane outside the caller's
  // width-segment reads its own value.
  const unsigned seg = lane & ~unsigned(width - 1);
  int src = int(lane);
  switch (kind) {
    case ShuffleKind::Up: src = int(lane) - arg >= int(seg) ? int(lane) - arg : int(lane); break;
    case ShuffleKind::Down: src = int(lane) + arg < int(seg) + width ? int(lane) + arg : int(lane); break;
    case ShuffleKind::Xor: {
      int s = int(lane) ^ arg;
      src = s >= int(seg) && s < int(seg) + width ? s : int(lane);
      break;
    }
    case ShuffleKind::Idx: src = int(seg) + ((arg % width) + width) % width; break;
  }
  if (!(mask >> src & 1))
    Die("kernel %s: lane %u reads lane %d in the shuffle at %s:%d, which mask 0x%08x does not name (undefined result)",
        kname, lane, src, file, line, mask);
  if (w.arrived == 0) {
    w.mask = mask;
    w.file = file;
    w.line = line;
    w.kind = kind;
    w.arg = arg;
    w.width = width;
    w.bytes = bytes;
  } else if (w.mask != mask || w.line != line || w.bytes != bytes || (w.file != file && strcmp(w.file, file) != 0)) {
    Die("kernel %s: divergent warp shuffles in warp %u: lane %u is at %s:%d (mask 0x%08x) while lanes %s wait at %s:%d "
        "(mask 0x%08x)",
        kname, warp, lane, file, line, mask, Lanes(w.arrived, 0).c_str(), w.file, w.line, w.mask);
  }
  memcpy(&w.value[lane], value, bytes);
  w.src[lane] = uint8_t(src);
  w.arrived |= 1u << lane;
  if (w.arrived == mask) {
    for (unsigned m = mask; m; m &= m - 1) {
      const unsigned l = unsigned(__builtin_ctz(m));
      w.result[l] = w.value[w.src[l]];
      fibers[base + l].state = State::Runnable;
    }
    w.arrived = 0;
    ++b.shuffles;
  } else {
    f->state = State::Shuffle;
    f->wait_file = file;
    f->wait_line = line;
    Suspend(*ex, f);
  }
  memcpy(value, &w.result[lane], bytes);
}

void* StaticShared(const void* key, size_t bytes, size_t align, const char* name, const char* file, int line) {
  Executor* ex = t_exec;
  if (!ex || !ex->block) Die("__shared__ variable '%s' (%s:%d) used outside a kernel", name, file, line);
  Block& b = *ex->block;
  for (Shared& s : b.statics)
    if (s.key == key) return s.buf.data;
  b.static_bytes += bytes;
  const size_t limit = Cfg().smem_optin;
  if (b.static_bytes > kStaticSharedLimit)
    Die("kernel %s: static __shared__ memory reaches %zu bytes with '%s' (%s:%d); the limit is %zu", b.info->name,
        b.static_bytes, name, file, line, kStaticSharedLimit);
  if (b.static_bytes + b.dynamic.size > limit)
    Die("kernel %s: static (%zu) + dynamic (%zu) shared memory exceeds the device's %zu bytes per block ('%s', %s:%d)",
        b.info->name, b.static_bytes, b.dynamic.size, limit, name, file, line);
  Shared s{key, Buffer::Make(bytes, align), align, name, file, line};
  FillFresh(s.buf.data, bytes);
  b.statics.push_back(s);
  return s.buf.data;
}

void* DynamicShared(const char* name, const char* file, int line) {
  Executor* ex = t_exec;
  if (!ex || !ex->block) Die("extern __shared__ '%s' (%s:%d) used outside a kernel", name, file, line);
  return ex->block->dynamic.data;
}

cudaError_t SetFuncMaxDynamicShared(const void* func, int bytes) {
  if (bytes < 0 || size_t(bytes) > Cfg().smem_optin) return Ret(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(g_func_mu);
  FuncDynLimit()[func] = size_t(bytes);
  return cudaSuccess;
}

void CheckPointerArg(const LaunchInfo& info, int index, const void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(g_mem_mu);
  const Allocation* a = Lookup(p, 0, info.name);
  if (!a)
    Die("kernel %s (launched at %s:%d): argument %d is %p, which is not device memory (a host pointer passed to a "
        "kernel?)",
        info.name, info.file, info.line, index, p);
  if (a->device != CurrentDevice())
    Die("kernel %s (launched at %s:%d) on device %d: argument %d is %p, memory of device %d (no peer access is "
        "emulated)",
        info.name, info.file, info.line, CurrentDevice(), index, p, a->device);
}

void CheckPointerRange(const LaunchInfo& info, int index, const char* field, const void* p, size_t bytes) {
  if (!p) return;
  char what[256];
  snprintf(what, sizeof what, "kernel %s (launched at %s:%d): argument %d, %s", info.name, info.file, info.line, index,
           field);
  std::lock_guard<std::mutex> lock(g_mem_mu);
  const Allocation* a = Lookup(p, bytes, what);
  if (!a) Die("%s is %p, which is not device memory (a host pointer passed to a kernel?)", what, p);
  if (a->device != CurrentDevice())
    Die("%s is %p, memory of device %d, but the kernel runs on device %d", what, p, a->device, CurrentDevice());
}

cudaError_t RunGrid(const LaunchInfo& li, void (*body)(void*), void* closure) {
  const dim3 g = li.grid, bl = li.block;
  const uint64_t threads = uint64_t(bl.x) * bl.y * bl.z;
  if (bl.x == 0 || bl.y == 0 || bl.z == 0 || bl.x > 1024 || bl.y > 1024 || bl.z > 64 || threads > 1024)
    Die("kernel %s (launched at %s:%d): invalid block (%u,%u,%u): each dimension >= 1, x,y <= 1024, z <= 64, at most "
        "1024 threads",
        li.name, li.file, li.line, bl.x, bl.y, bl.z);
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 0x7FFFFFFFu || g.y > 65535 || g.z > 65535)
    Die("kernel %s (launched at %s:%d): invalid grid (%u,%u,%u): each dimension >= 1, x < 2^31, y,z <= 65535", li.name,
        li.file, li.line, g.x, g.y, g.z);
  size_t dyn_limit = kDefaultDynamicLimit;
  {
    std::lock_guard<std::mutex> lock(g_func_mu);
    auto it = FuncDynLimit().find(li.func);
    if (it != FuncDynLimit().end()) dyn_limit = it->second;
  }
  if (li.smem > dyn_limit)
    Die("kernel %s (launched at %s:%d): asks for %zu bytes of dynamic shared memory, but its limit is %zu (raise it "
        "with cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize))",
        li.name, li.file, li.line, li.smem, dyn_limit);
  if (li.smem > Cfg().smem_optin)
    Die("kernel %s (launched at %s:%d): asks for %zu bytes of dynamic shared memory; the device has %zu per block",
        li.name, li.file, li.line, li.smem, Cfg().smem_optin);
  Executor& ex = Exec();
  if (ex.block) Die("kernel %s launched from device code (dynamic parallelism is not emulated)", li.name);

  std::vector<Fiber> fibers(threads);
  std::vector<WarpSlot> warps((threads + 31) / 32);
  Block b;
  b.info = &li;
  b.body = body;
  b.closure = closure;
  b.fibers = &fibers;
  b.nthreads = unsigned(threads);
  b.warps = &warps;
  b.dynamic = Buffer::Make(li.smem, 16);

  const uint64_t nblocks = uint64_t(g.x) * g.y * g.z;
  uint64_t rng = Cfg().seed ^ 0xA0761D6478BD642Full;
  auto coords = [&](uint64_t i) { return uint3{unsigned(i % g.x), unsigned(i / g.x % g.y), unsigned(i / (uint64_t(g.x) * g.y))}; };
  if (Cfg().seeded && nblocks > 1) {
    // A permutation i -> (a*i + c) mod n with gcd(a, n) = 1: every block once, in a
    // seed-dependent order, without a table for huge grids.
    uint64_t a = SplitMix(rng) % nblocks | 1;
    while (std::__gcd(a, nblocks) != 1) a += 2;
    const uint64_t c = SplitMix(rng) % nblocks;
    for (uint64_t i = 0; i < nblocks; ++i)
      RunBlock(ex, b, coords(uint64_t((static_cast<unsigned __int128>(a) * i + c) % nblocks)), rng);
  } else {
    for (uint64_t i = 0; i < nblocks; ++i) RunBlock(ex, b, coords(i), rng);
  }
  b.dynamic.Release(16);
  CheckDeviceRedzones(li.name);
  if (Cfg().stats) {
    std::lock_guard<std::mutex> lock(g_func_mu);
    static bool registered = (atexit(PrintStats), true);
    (void)registered;
    Stats& s = KernelStats()[li.name];
    s.launches++;
    s.blocks += nblocks;
    s.threads += nblocks * threads;
    s.barriers += b.barriers;
    s.shuffles += b.shuffles;
    s.max_smem = std::max(s.max_smem, li.smem);
  }
  return cudaSuccess;
}

}  // namespace iz_emu

// ---------------------------------------------------------------------------------
// Host API.
using namespace iz_emu;

cudaError_t cudaGetDeviceCount(int* count) {
  *count = Cfg().devices;
  return Cfg().devices > 0 ? cudaSuccess : Ret(cudaErrorNoDevice);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device < 0 || device >= Cfg().devices) return Ret(cudaErrorInvalidDevice);
  memset(prop, 0, sizeof *prop);
  // One name for every emulated device, as identical GPUs report (cudaGetDevice tells them apart).
  snprintf(prop->name, sizeof prop->name, "inferzip CUDA emulator");
  prop->totalGlobalMem = kTotalGlobalMem;
  prop->sharedMemPerBlock = kStaticSharedLimit;
  prop->sharedMemPerBlockOptin = Cfg().smem_optin;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7FFFFFFF;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 132;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = CurrentDevice();
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= Cfg().devices) return Ret(cudaErrorInvalidDevice);
  CurrentDevice() = device;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device < 0 || device >= Cfg().devices) return Ret(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(kStaticSharedLimit); break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = 132; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(Cfg().smem_optin); break;
    default: return Ret(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (!ptr) return Ret(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (Cfg().devices == 0) return Ret(cudaErrorNoDevice);
  const int dev = CurrentDevice();
  {
    std::lock_guard<std::mutex> lock(g_mem_mu);
    if (bytes > kTotalGlobalMem - g_used[dev]) return Ret(cudaErrorMemoryAllocation);
    g_used[dev] += bytes;
  }
  Allocation a;
  a.buf = Buffer::Make(bytes, 256);
  a.device = dev;
  FillFresh(a.buf.data, bytes);
  *ptr = a.buf.data;
  std::lock_guard<std::mutex> lock(g_mem_mu);
  Table()[reinterpret_cast<uintptr_t>(a.buf.data)] = a;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  Allocation a;
  {
    std::lock_guard<std::mutex> lock(g_mem_mu);
    auto it = Table().find(reinterpret_cast<uintptr_t>(ptr));
    if (it == Table().end()) {
      const Allocation* inside = Lookup(ptr, 0, "cudaFree");
      if (inside)
        Die("cudaFree(%p): the pointer is inside a device allocation of %zu bytes at %p, not its start", ptr,
            inside->buf.size, static_cast<void*>(inside->buf.data));
      Die("cudaFree(%p): not a device allocation (already freed, or host memory)", ptr);
    }
    if (it->second.device != CurrentDevice())
      Die("cudaFree(%p): memory of device %d freed while device %d is current (cudaSetDevice first)", ptr,
          it->second.device, CurrentDevice());
    a = it->second;
    Table().erase(it);
    g_used[a.device] -= a.buf.size;
  }
  if (const char* where = a.buf.Damaged())
    Die("device allocation [%p, +%zu) was written %s (noticed at cudaFree)", ptr, a.buf.size, where);
  a.buf.Release(256);
  return cudaSuccess;
}

namespace {
const char* KindName(cudaMemcpyKind k) {
  switch (k) {
    case cudaMemcpyHostToHost: return "HostToHost";
    case cudaMemcpyHostToDevice: return "HostToDevice";
    case cudaMemcpyDeviceToHost: return "DeviceToHost";
    case cudaMemcpyDeviceToDevice: return "DeviceToDevice";
    case cudaMemcpyDefault: return "Default";
  }
  return "?";
}
}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) Die("cudaMemcpy%s of %zu bytes with a null pointer (dst %p, src %p)", KindName(kind), bytes, dst, src);
  {
    std::lock_guard<std::mutex> lock(g_mem_mu);
    const Allocation* d_alloc = Lookup(dst, bytes, "cudaMemcpy destination");
    const Allocation* s_alloc = Lookup(src, bytes, "cudaMemcpy source");
    const bool d_dev = d_alloc != nullptr;
    const bool s_dev = s_alloc != nullptr;
    for (const Allocation* a : {d_alloc, s_alloc})
      if (a && a->device != CurrentDevice())
        Die("cudaMemcpy%s of %zu bytes (dst %p, src %p) touches memory of device %d while device %d is current (no "
            "peer access is emulated: cudaSetDevice first)",
            KindName(kind), bytes, dst, src, a->device, CurrentDevice());
    bool want_d = false, want_s = false;
    switch (kind) {
      case cudaMemcpyHostToHost: break;
      case cudaMemcpyHostToDevice: want_d = true; break;
      case cudaMemcpyDeviceToHost: want_s = true; break;
      case cudaMemcpyDeviceToDevice: want_d = want_s = true; break;
      case cudaMemcpyDefault: want_d = d_dev, want_s = s_dev; break;
      default: return Ret(cudaErrorInvalidMemcpyDirection);
    }
    if (d_dev != want_d || s_dev != want_s)
      Die("cudaMemcpy%s of %zu bytes: the destination %p is %s memory and the source %p is %s memory", KindName(kind),
          bytes, dst, d_dev ? "device" : "host", src, s_dev ? "device" : "host");
  }
  memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);  // streams run in order: everything is synchronous
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(g_mem_mu);
    const Allocation* a = Lookup(dst, bytes, "cudaMemset");
    if (!a) Die("cudaMemset(%p, %d, %zu): not device memory", dst, value, bytes);
    if (a->device != CurrentDevice())
      Die("cudaMemset(%p, %d, %zu): memory of device %d while device %d is current (cudaSetDevice first)", dst, value,
          bytes, a->device, CurrentDevice());
  }
  memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) { return cudaMemset(dst, value, bytes); }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaGetLastError() {
  cudaError_t e = LastError();
  LastError() = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return LastError(); }

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}
