// qgen GPU runner: a long-lived process that executes generated kernels on request, so that the TypeScript
// harness (property tests with shrinking, benchmarks) can drive real kernels without Node bindings.
//
// Protocol (little-endian, stdin -> stdout; logs go to stderr). One request, one response, in order.
//   request : u32 magic 'QGR2' | u32 op | u32 name_len | name bytes
//             | i64 rows | i64 cols | i64 depth | u64 seed | u64 sign_seed | u32 poison | u32 reps | u32 n_buffers
//             | n_buffers x ( u64 size | u32 fill | [size bytes when fill == 1] )
//   response: u32 magic 'QGRS' | i32 status | u32 msg_len | msg bytes
//             | op RUN:   n_buffers x ( u64 size | size bytes )           (device contents after the launch)
//             | op BENCH: u32 n | n x f32 kernel ms | n x f32 copy ms    (per repetition, events)
// Buffers are bound to the kernel's argument struct in the order that harness/gpu/bind.ts documents per kind.
// rows x cols is the kernel's shape; GEMMs read m = rows, k = cols, n = depth. seed and sign_seed go to a quantizer's
// qgen_quantize_args.seed / .sign_seed (NUMERICS §3.2); a Hadamard kernel gets sign_seed as its seed (its signs);
// other kernels ignore both. Names starting with "baseline:" are the reference implementations of baselines.cu
// (cuBLAS), timed the same way.
// Buffers with fill 0 get the poison byte before the launch, so unwritten bytes show; 2..4 get random data.
#include <cuda_runtime.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <algorithm>
#include "dispatch.h"

namespace {

// "QGR2": version 2 of the request, with sign_seed (version 1, "QGRQ", had seed only: a stale client is refused).
constexpr uint32_t kRequestMagic = 0x32524751u;
constexpr uint32_t kResponseMagic = 0x53524751u;  // "QGRS"
enum Op : uint32_t { kOpRun = 1, kOpBench = 2, kOpQuit = 3, kOpDevice = 4 };

bool read_exact(void* dst, size_t n) {
  uint8_t* p = static_cast<uint8_t*>(dst);
  while (n) {
    size_t got = fread(p, 1, n, stdin);
    if (got == 0) return false;
    p += got;
    n -= got;
  }
  return true;
}
void write_exact(const void* src, size_t n) { fwrite(src, 1, n, stdout); }
template <class T>
T read_pod() {
  T v{};
  if (!read_exact(&v, sizeof v)) exit(0);
  return v;
}
template <class T>
void write_pod(T v) {
  write_exact(&v, sizeof v);
}

void respond_header(int32_t status, const std::string& msg) {
  write_pod(kResponseMagic);
  write_pod(status);
  write_pod(static_cast<uint32_t>(msg.size()));
  write_exact(msg.data(), msg.size());
}

#define CUDA_OR_FAIL(call)                                       \
  do {                                                           \
    cudaError_t err_ = (call);                                   \
    if (err_ != cudaSuccess) {                                   \
      fail = std::string(#call ": ") + cudaGetErrorString(err_); \
    }                                                            \
  } while (0)

// has_data: 0 = fill with the poison byte, 1 = contents follow, 2..4 = filled on the device with pseudo-random
// data (benchmarks: no 100+ MB transfers through the pipe, and never zeros).
enum Fill : uint32_t { kPoison = 0, kData = 1, kRandomBf16 = 2, kRandomBytes = 3, kRandomE4m3Scales = 4 };
struct HostBuffer {
  uint64_t size;
  uint32_t fill;
  std::vector<uint8_t> data;
};

__device__ uint32_t mix32(uint64_t i, uint32_t salt) {
  uint32_t h = static_cast<uint32_t>(i) * 0x9E3779B1u ^ static_cast<uint32_t>(i >> 32) * 0x85EBCA77u ^ salt;
  h ^= h >> 15;
  h *= 0x2C1B3C6Du;
  h ^= h >> 12;
  h *= 0x297A2D39u;
  h ^= h >> 15;
  return h;
}

// Approximately N(0, 1) bf16 values (sum of four uniform bytes), arbitrary bytes, or E4M3 scales in [2^-4, 2^4).
__global__ void fill_random(uint8_t* p, uint64_t n, uint32_t mode, uint32_t salt) {
  uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  if (mode == kRandomBf16) {
    uint16_t* q = reinterpret_cast<uint16_t*>(p);
    for (uint64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n / 2; i += stride) {
      uint32_t h = mix32(i, salt);
      float v = (float((h & 255) + ((h >> 8) & 255) + ((h >> 16) & 255) + (h >> 24)) - 510.0f) / 147.8f;
      uint32_t b = __float_as_uint(v);
      q[i] = static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
    }
  } else {
    for (uint64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
      uint32_t h = mix32(i, salt);
      p[i] = mode == kRandomBytes ? static_cast<uint8_t>(h) : static_cast<uint8_t>(0x20 + (h & 0x3F));
    }
  }
}

// Busy-waits about `ns` nanoseconds (benchmarks: keeps the GPU busy while the host enqueues the timed launch).
__global__ void qgen_spin(unsigned ns) {
  for (unsigned t = 0; t < ns; t += 1000) __nanosleep(1000);
}

// One set of device buffers for a request; benchmarks allocate several sets and rotate through them so that the
// working set exceeds the L2 cache.
struct DeviceSet {
  std::vector<void*> ptrs;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

std::string alloc_set(const std::vector<HostBuffer>& bufs, uint8_t poison, size_t ws_bytes, DeviceSet& set) {
  std::string fail;
  for (const HostBuffer& b : bufs) {
    void* p = nullptr;
    CUDA_OR_FAIL(cudaMalloc(&p, std::max<uint64_t>(b.size, 16)));
    if (!fail.empty()) return fail;
    if (b.fill == kData)
      CUDA_OR_FAIL(cudaMemcpy(p, b.data.data(), b.size, cudaMemcpyHostToDevice));
    else if (b.fill == kPoison)
      CUDA_OR_FAIL(cudaMemset(p, poison, b.size));
    else {
      fill_random<<<1024, 256>>>(static_cast<uint8_t*>(p), b.size, b.fill,
                                 static_cast<uint32_t>(set.ptrs.size()) * 7919u + 17u);
      CUDA_OR_FAIL(cudaGetLastError());
    }
    set.ptrs.push_back(p);
  }
  if (ws_bytes) {
    CUDA_OR_FAIL(cudaMalloc(&set.workspace, ws_bytes));
    CUDA_OR_FAIL(cudaMemset(set.workspace, poison, ws_bytes));  // the kernel must initialise what it needs
  }
  set.workspace_bytes = ws_bytes;
  return fail;
}

void free_set(DeviceSet& set) {
  for (void* p : set.ptrs) cudaFree(p);
  if (set.workspace) cudaFree(set.workspace);
  set = DeviceSet{};
}

void handle(uint32_t op) {
  uint32_t name_len = read_pod<uint32_t>();
  std::string name(name_len, '\0');
  read_exact(name.data(), name_len);
  int64_t rows = read_pod<int64_t>(), cols = read_pod<int64_t>(), depth = read_pod<int64_t>();
  uint64_t seed = read_pod<uint64_t>();
  uint64_t sign_seed = read_pod<uint64_t>();
  uint8_t poison = static_cast<uint8_t>(read_pod<uint32_t>());
  uint32_t reps = read_pod<uint32_t>();
  uint32_t n = read_pod<uint32_t>();
  std::vector<HostBuffer> bufs(n);
  uint64_t total_bytes = 0;
  for (HostBuffer& b : bufs) {
    b.size = read_pod<uint64_t>();
    b.fill = read_pod<uint32_t>();
    if (b.fill == kData) {
      b.data.resize(b.size);
      read_exact(b.data.data(), b.size);
    }
    total_bytes += b.size;
  }
  const qgen_dispatch_entry* k =
      name.rfind("baseline:", 0) == 0 ? qgen_find_baseline(name.c_str()) : qgen_find_kernel(name.c_str());
  if (!k) {
    respond_header(-1, "runner: unknown kernel " + name);
    return;
  }
  size_t ws = k->workspace_bytes ? k->workspace_bytes(rows, cols) : 0;

  if (op == kOpRun) {
    DeviceSet set;
    std::string fail = alloc_set(bufs, poison, ws, set);
    qgen_status st{};
    if (fail.empty()) {
      st = k->launch(set.ptrs.data(), static_cast<int>(set.ptrs.size()), rows, cols, depth, seed, sign_seed,
                     set.workspace, ws, 0);
      CUDA_OR_FAIL(cudaGetLastError());
      CUDA_OR_FAIL(cudaDeviceSynchronize());
    }
    if (!fail.empty()) {
      free_set(set);
      respond_header(-2, fail);
      return;
    }
    respond_header(st.code, st.message);
    for (size_t i = 0; i < bufs.size(); ++i) {
      std::vector<uint8_t> out(bufs[i].size);
      cudaMemcpy(out.data(), set.ptrs[i], bufs[i].size, cudaMemcpyDeviceToHost);
      write_pod<uint64_t>(bufs[i].size);
      write_exact(out.data(), out.size());
    }
    free_set(set);
    return;
  }

  // kOpBench: rotate over enough buffer sets to exceed the L2 several times (>= 256 MiB touched per round).
  const uint64_t target = 256ull << 20;
  int n_sets = static_cast<int>(
      std::min<uint64_t>(8, std::max<uint64_t>(1, (target + total_bytes - 1) / std::max<uint64_t>(total_bytes, 1))));
  std::vector<DeviceSet> sets(n_sets);
  std::string fail;
  for (DeviceSet& s : sets) {
    if (fail.empty()) fail = alloc_set(bufs, poison, ws, s);
  }
  // Copy baseline: a device-to-device copy that reads and writes as many bytes as the kernel must move
  // (its input once plus its outputs once): copy total/2 bytes, rotated the same way.
  size_t copy_bytes = (total_bytes / 2 + 255) & ~size_t(255);
  std::vector<void*> copy_src(n_sets, nullptr), copy_dst(n_sets, nullptr);
  for (int i = 0; i < n_sets && fail.empty(); ++i) {
    CUDA_OR_FAIL(cudaMalloc(&copy_src[i], copy_bytes));
    CUDA_OR_FAIL(cudaMalloc(&copy_dst[i], copy_bytes));
    if (fail.empty()) CUDA_OR_FAIL(cudaMemset(copy_src[i], 0x3c, copy_bytes));
  }
  std::vector<float> kms, cms;
  if (fail.empty()) {
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    qgen_status st{};
    for (int warm = 0; warm < 3 && st.code == 0; ++warm)
      for (int i = 0; i < n_sets; ++i)
        st = k->launch(sets[i].ptrs.data(), static_cast<int>(bufs.size()), rows, cols, depth, seed, sign_seed,
                       sets[i].workspace, ws, 0);
    CUDA_OR_FAIL(cudaDeviceSynchronize());
    if (st.code != 0) {
      fail = st.message;
    }
    for (uint32_t r = 0; r < reps && fail.empty(); ++r) {
      int i = static_cast<int>(r % n_sets);
      // A short busy kernel first, so that host-side launch work (argument checks, tensor maps, cuBLAS plans) is
      // done while the GPU is still busy and the events time only device execution.
      qgen_spin<<<1, 1>>>(20000);
      cudaEventRecord(e0);
      k->launch(sets[i].ptrs.data(), static_cast<int>(bufs.size()), rows, cols, depth, seed, sign_seed,
                sets[i].workspace, ws, 0);
      cudaEventRecord(e1);
      cudaEventSynchronize(e1);
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      kms.push_back(ms);
      qgen_spin<<<1, 1>>>(20000);
      cudaEventRecord(e0);
      cudaMemcpyAsync(copy_dst[i], copy_src[i], copy_bytes, cudaMemcpyDeviceToDevice, 0);
      cudaEventRecord(e1);
      cudaEventSynchronize(e1);
      cudaEventElapsedTime(&ms, e0, e1);
      cms.push_back(ms);
    }
    CUDA_OR_FAIL(cudaGetLastError());
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
  }
  for (DeviceSet& s : sets) free_set(s);
  for (int i = 0; i < n_sets; ++i) {
    cudaFree(copy_src[i]);
    cudaFree(copy_dst[i]);
  }
  if (!fail.empty()) {
    respond_header(-2, fail);
    return;
  }
  respond_header(0, "");
  write_pod<uint32_t>(static_cast<uint32_t>(kms.size()));
  write_exact(kms.data(), kms.size() * sizeof(float));
  write_exact(cms.data(), cms.size() * sizeof(float));
}

void describe_device() {
  cudaDeviceProp p{};
  cudaGetDeviceProperties(&p, 0);
  int drv = 0;
  cudaDriverGetVersion(&drv);
  char buf[512];
  snprintf(buf, sizeof buf, "%s (sm_%d%d, %d SMs, %.1f GiB, L2 %d MiB, driver %d)", p.name, p.major, p.minor,
           p.multiProcessorCount, p.totalGlobalMem / 1073741824.0, p.l2CacheSize >> 20, drv);
  respond_header(0, buf);
}

}  // namespace

int main() {
  setvbuf(stdout, nullptr, _IOFBF, 1 << 20);
  for (;;) {
    uint32_t magic = 0;
    if (!read_exact(&magic, 4)) return 0;
    if (magic != kRequestMagic) {
      fprintf(stderr, "runner: bad request magic %08x\n", magic);
      return 2;
    }
    uint32_t op = read_pod<uint32_t>();
    if (op == kOpQuit) return 0;
    if (op == kOpDevice)
      describe_device();
    else
      handle(op);
    fflush(stdout);
  }
}
