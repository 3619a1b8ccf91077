// qgen_torch_ops.cpp — torch.library ops over the vendored qgen kernels (C ABI: kernels/qgen.h).
// Every op checks devices, dtypes and shapes first and names the argument in its error; the kernels' own
// qgen_status checks run after that. Work goes on the current CUDA stream; nothing synchronises.
// Schemas live here (TORCH_LIBRARY); fake implementations for torch.compile live in qgen_torch/ops.py.
#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstring>
#include <string>

#include "qgen_torch_kernels.h"

namespace qgen_torch {
namespace {

template <typename Table, size_t N>
const Table& find_kernel(const Table (&table)[N], const std::string& name, const char* op) {
  for (const Table& k : table)
    if (name == k.name) return k;
  std::string known;
  for (const Table& k : table) known += std::string(known.empty() ? "" : ", ") + k.name;
  TORCH_CHECK(false, "qgen::", op, ": no kernel named '", name, "' in this build (", kArch, "); allowed: ", known);
}

void check_status(const qgen_status& s, const char* kernel) {
  TORCH_CHECK(s.code == QGEN_OK, "qgen_", kernel, ": ", s.message);
}

// Numbers, shapes and devices go into error messages as ready-made strings (std::to_string, never an ostream
// insertion of an integer): with torch 2.11's wheel and g++ 13 on the H100 machine, streaming an int64 into the
// TORCH_CHECK message crashed the process (SIGSEGV in std::ostream::_M_insert<long>) instead of raising.
std::string dec(int64_t v) { return std::to_string(v); }
std::string shape_of(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + dec(t.size(i));
  return s + "]";
}

// Bytes of the 128x4 scale layout for a [rows, cols/16] grid (NUMERICS §7; the formula is qgen.h's).
int64_t scale_bytes(int64_t rows, int64_t cols) { return qgen_scale_bytes_128x4(rows, cols / 16); }

void check_cuda(const at::Tensor& t, const char* op, const char* arg, at::ScalarType dtype, int64_t dim) {
  TORCH_CHECK(t.is_cuda(), "qgen::", op, ": ", arg, " must be a CUDA tensor; got device ", t.device().str());
  TORCH_CHECK(t.scalar_type() == dtype, "qgen::", op, ": ", arg, " must have dtype ", dtype, "; got ", t.scalar_type());
  TORCH_CHECK(t.dim() == dim, "qgen::", op, ": ", arg, " must be ", dec(dim), "-D; got shape ", shape_of(t));
  TORCH_CHECK(t.is_contiguous(), "qgen::", op, ": ", arg, " must be contiguous");
}

// An NVFP4 tensor [rows, cols]: codes uint8 [rows, cols/2], scales uint8 [scale_bytes], tensor_scale f32 [1].
void check_nvfp4(const at::Tensor& codes, const at::Tensor& scales, const at::Tensor& ts, const char* op,
                 const char* what) {
  const std::string c = std::string(what) + "_codes", s = std::string(what) + "_scales",
                    t = std::string(what) + "_tensor_scale";
  check_cuda(codes, op, c.c_str(), at::kByte, 2);
  check_cuda(scales, op, s.c_str(), at::kByte, 1);
  check_cuda(ts, op, t.c_str(), at::kFloat, 1);
  TORCH_CHECK(ts.numel() == 1, "qgen::", op, ": ", t, " must hold one float; got ", dec(ts.numel()));
  const int64_t rows = codes.size(0), cols = codes.size(1) * 2;
  TORCH_CHECK(cols % 16 == 0, "qgen::", op, ": ", c, " has ", dec(cols),
              " columns of codes; allowed: a multiple of 16");
  TORCH_CHECK(scales.numel() == scale_bytes(rows, cols), "qgen::", op, ": ", s, " has ", dec(scales.numel()),
              " bytes; allowed: ", dec(scale_bytes(rows, cols)), " (the 128x4 layout of a [", dec(rows), ", ",
              dec(cols), "/16] grid)");
  TORCH_CHECK(codes.device() == scales.device() && codes.device() == ts.device(), "qgen::", op, ": ", what,
              " codes, scales and tensor scale must be on one device");
}

// seeds: CPU int64 [2] = (seed, sign_seed); read on the host, never synchronises.
std::pair<uint64_t, uint64_t> read_seeds(const at::Tensor& seeds, const char* op) {
  TORCH_CHECK(seeds.device().is_cpu() && seeds.scalar_type() == at::kLong && seeds.numel() == 2, "qgen::", op,
              ": seeds must be a CPU int64 tensor of 2 elements (seed, sign_seed); got ", seeds.device().str(), " ",
              seeds.scalar_type(), " with ", dec(seeds.numel()), " elements");
  const at::Tensor s = seeds.contiguous();
  const int64_t* p = s.data_ptr<int64_t>();
  return {static_cast<uint64_t>(p[0]), static_cast<uint64_t>(p[1])};
}

// Runs a quantizer into fresh codes, scales and tensor scale (and, given, the bf16 plane it also writes).
std::tuple<at::Tensor, at::Tensor, at::Tensor> run_quantize(const QuantizeKernel& k, qgen_quantize_args& args,
                                                            const at::TensorOptions& bytes,
                                                            const at::Tensor* plane = nullptr) {
  at::Tensor codes = at::empty({args.rows, args.cols / 2}, bytes);
  at::Tensor scales = at::empty({scale_bytes(args.rows, args.cols)}, bytes);
  at::Tensor ts = at::empty({1}, bytes.dtype(at::kFloat));
  at::Tensor workspace;
  if (k.workspace_bytes != nullptr) {
    const size_t need = k.workspace_bytes(args.rows, args.cols);
    workspace = at::empty({static_cast<int64_t>(need > 0 ? need : 1)}, bytes);
    args.workspace = workspace.data_ptr();
    args.workspace_bytes = need;
  }
  args.codes = codes.data_ptr<uint8_t>();
  args.scales = scales.data_ptr<uint8_t>();
  args.tensor_scale = ts.data_ptr<float>();
  args.plane = plane != nullptr ? plane->data_ptr() : nullptr;
  check_status(k.run(&args, c10::cuda::getCurrentCUDAStream()), k.name);
  return {codes, scales, ts};
}

// Whether the op fits the kernel: the plane ops take plane-writing kernels (NUMERICS §6.6), the others do not.
void check_plane_kernel(const QuantizeKernel& k, bool plane_op, const char* op) {
  if (plane_op) {
    TORCH_CHECK(k.plane, "qgen::", op, "_plane: kernel '", k.name,
                "' writes no bf16 plane; allowed: a kernel with "
                "outputs 'nvfp4+bf16-plane' (qgen_torch.ops: G.KERNELS[name]['plane_kernel'])");
  } else {
    TORCH_CHECK(!k.plane, "qgen::", op, ": kernel '", k.name, "' also writes a bf16 plane; use qgen::", op, "_plane");
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> run_quantize_plane(const QuantizeKernel& k, qgen_quantize_args& args,
                                                                  const at::TensorOptions& bytes, at::Tensor& plane) {
  plane = at::empty({args.rows, args.cols}, bytes.dtype(at::kBFloat16));
  return run_quantize(k, args, bytes, &plane);
}

// The arguments of a bf16-input quantizer: x bf16 [rows, cols] (or [cols, rows] for a transposed-input kernel).
const QuantizeKernel& quantize_args(const at::Tensor& x, const std::string& kernel, const at::Tensor& seeds,
                                    const char* op, bool plane_op, qgen_quantize_args& args) {
  const QuantizeKernel& k = find_kernel(kQuantizeKernels, kernel, op);
  TORCH_CHECK(!k.requant, "qgen::", op, ": kernel '", kernel, "' requantizes an NVFP4 tensor; use qgen::requantize",
              plane_op ? "_plane" : "");
  check_plane_kernel(k, plane_op, "quantize");
  check_cuda(x, op, "x", at::kBFloat16, 2);
  const auto [seed, sign_seed] = read_seeds(seeds, op);
  args = qgen_quantize_args{};
  args.x = x.data_ptr();
  args.rows = k.transposed ? x.size(1) : x.size(0);
  args.cols = k.transposed ? x.size(0) : x.size(1);
  args.seed = seed;
  args.sign_seed = sign_seed;
  return k;
}

// x bf16 [rows, cols] (or [cols, rows] for a transposed-input kernel) -> NVFP4 [rows, cols] quantized along cols.
std::tuple<at::Tensor, at::Tensor, at::Tensor> quantize(const at::Tensor& x, const std::string& kernel,
                                                        const at::Tensor& seeds) {
  qgen_quantize_args args;
  const QuantizeKernel& k = quantize_args(x, kernel, seeds, "quantize", false, args);
  const c10::cuda::CUDAGuard guard(x.device());
  return run_quantize(k, args, x.options().dtype(at::kByte));
}

// quantize, also returning the bf16 plane [rows, cols] = e2m1 * scale, no tensor scale (NUMERICS §6.6).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> quantize_plane(const at::Tensor& x,
                                                                          const std::string& kernel,
                                                                          const at::Tensor& seeds) {
  qgen_quantize_args args;
  const QuantizeKernel& k = quantize_args(x, kernel, seeds, "quantize_plane", true, args);
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor plane;
  auto [codes, scales, ts] = run_quantize_plane(k, args, x.options().dtype(at::kByte), plane);
  return {codes, scales, ts, plane};
}

// The arguments of a requantizer: NVFP4 A [R, C] quantized along C -> A^T [C, R] quantized along R (NUMERICS §5.9).
const QuantizeKernel& requantize_args(const at::Tensor& codes, const at::Tensor& scales, const at::Tensor& tensor_scale,
                                      const std::string& kernel, const at::Tensor& seeds, const char* op, bool plane_op,
                                      qgen_quantize_args& args) {
  const QuantizeKernel& k = find_kernel(kQuantizeKernels, kernel, op);
  TORCH_CHECK(k.requant, "qgen::", op, ": kernel '", kernel, "' quantizes bf16 input; use qgen::quantize",
              plane_op ? "_plane" : "");
  check_plane_kernel(k, plane_op, "requantize");
  check_nvfp4(codes, scales, tensor_scale, op, "in");
  const auto [seed, sign_seed] = read_seeds(seeds, op);
  args = qgen_quantize_args{};
  args.in_codes = codes.data_ptr<uint8_t>();
  args.in_scales = scales.data_ptr<uint8_t>();
  args.in_tensor_scale = tensor_scale.data_ptr<float>();
  args.rows = codes.size(1) * 2;
  args.cols = codes.size(0);
  args.seed = seed;
  args.sign_seed = sign_seed;
  return k;
}

// NVFP4 A [R, C] quantized along C -> NVFP4 of A^T [C, R] quantized along R (NUMERICS §5.9).
std::tuple<at::Tensor, at::Tensor, at::Tensor> requantize(const at::Tensor& codes, const at::Tensor& scales,
                                                          const at::Tensor& tensor_scale, const std::string& kernel,
                                                          const at::Tensor& seeds) {
  qgen_quantize_args args;
  const QuantizeKernel& k = requantize_args(codes, scales, tensor_scale, kernel, seeds, "requantize", false, args);
  const c10::cuda::CUDAGuard guard(codes.device());
  return run_quantize(k, args, codes.options());
}

// requantize, also returning the bf16 plane [C, R] of the result (NUMERICS §6.6).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> requantize_plane(const at::Tensor& codes,
                                                                            const at::Tensor& scales,
                                                                            const at::Tensor& tensor_scale,
                                                                            const std::string& kernel,
                                                                            const at::Tensor& seeds) {
  qgen_quantize_args args;
  const QuantizeKernel& k = requantize_args(codes, scales, tensor_scale, kernel, seeds, "requantize_plane", true, args);
  const c10::cuda::CUDAGuard guard(codes.device());
  at::Tensor plane;
  auto [out_codes, out_scales, ts] = run_quantize_plane(k, args, codes.options(), plane);
  return {out_codes, out_scales, ts, plane};
}

// A [m, k] and B [n, k]: the same K, one device.
void check_gemm_operands(const at::Tensor& a_codes, const at::Tensor& b_codes) {
  const int64_t ka = a_codes.size(1) * 2, kb = b_codes.size(1) * 2;
  TORCH_CHECK(ka == kb, "qgen::gemm: a is [", dec(a_codes.size(0)), ", ", dec(ka), "] and b is [", dec(b_codes.size(0)),
              ", ", dec(kb), "]; allowed: the same K (C = A . B^T)");
  TORCH_CHECK(a_codes.device() == b_codes.device(), "qgen::gemm: a and b must be on one device");
}

// C [m, n] = tA tB . A [m, k] . B [n, k]^T, both NVFP4 along k.
at::Tensor gemm(const at::Tensor& a_codes, const at::Tensor& a_scales, const at::Tensor& a_ts,
                const at::Tensor& b_codes, const at::Tensor& b_scales, const at::Tensor& b_ts,
                const std::string& kernel) {
  const GemmKernel& k = find_kernel(kGemmKernels, kernel, "gemm");
  check_nvfp4(a_codes, a_scales, a_ts, "gemm", "a");
  check_nvfp4(b_codes, b_scales, b_ts, "gemm", "b");
  check_gemm_operands(a_codes, b_codes);
  const c10::cuda::CUDAGuard guard(a_codes.device());
  at::Tensor c =
      at::empty({a_codes.size(0), b_codes.size(0)}, a_codes.options().dtype(k.f32_out ? at::kFloat : at::kBFloat16));
  qgen_gemm_args args{};
  args.a_codes = a_codes.data_ptr<uint8_t>();
  args.a_scales = a_scales.data_ptr<uint8_t>();
  args.a_tensor_scale = a_ts.data_ptr<float>();
  args.b_codes = b_codes.data_ptr<uint8_t>();
  args.b_scales = b_scales.data_ptr<uint8_t>();
  args.b_tensor_scale = b_ts.data_ptr<float>();
  args.m = a_codes.size(0);
  args.n = b_codes.size(0);
  args.k = a_codes.size(1) * 2;
  args.c = c.data_ptr();
  check_status(k.run(&args, c10::cuda::getCurrentCUDAStream()), k.name);
  return c;
}

at::Tensor dequantize(const at::Tensor& codes, const at::Tensor& scales, const at::Tensor& tensor_scale,
                      const std::string& kernel) {
  const DequantizeKernel& k = find_kernel(kDequantizeKernels, kernel, "dequantize");
  check_nvfp4(codes, scales, tensor_scale, "dequantize", "in");
  const c10::cuda::CUDAGuard guard(codes.device());
  at::Tensor y =
      at::empty({codes.size(0), codes.size(1) * 2}, codes.options().dtype(k.f32_out ? at::kFloat : at::kBFloat16));
  qgen_dequantize_args args{};
  args.codes = codes.data_ptr<uint8_t>();
  args.scales = scales.data_ptr<uint8_t>();
  args.tensor_scale = tensor_scale.data_ptr<float>();
  args.rows = codes.size(0);
  args.cols = codes.size(1) * 2;
  args.y = y.data_ptr();
  check_status(k.run(&args, c10::cuda::getCurrentCUDAStream()), k.name);
  return y;
}

}  // namespace
}  // namespace qgen_torch

TORCH_LIBRARY(qgen, m) {
  m.def("quantize(Tensor x, str kernel, Tensor seeds) -> (Tensor codes, Tensor scales, Tensor tensor_scale)");
  m.def(
      "requantize(Tensor codes, Tensor scales, Tensor tensor_scale, str kernel, Tensor seeds) -> (Tensor codes, Tensor "
      "scales, Tensor tensor_scale)");
  m.def(
      "quantize_plane(Tensor x, str kernel, Tensor seeds) -> (Tensor codes, Tensor scales, Tensor tensor_scale, Tensor "
      "plane)");
  m.def(
      "requantize_plane(Tensor codes, Tensor scales, Tensor tensor_scale, str kernel, Tensor seeds) -> (Tensor codes, "
      "Tensor scales, Tensor tensor_scale, Tensor plane)");
  m.def(
      "gemm(Tensor a_codes, Tensor a_scales, Tensor a_tensor_scale, Tensor b_codes, Tensor b_scales, Tensor "
      "b_tensor_scale, str kernel) -> Tensor");
  m.def("dequantize(Tensor codes, Tensor scales, Tensor tensor_scale, str kernel) -> Tensor");
}

TORCH_LIBRARY_IMPL(qgen, CUDA, m) {
  m.impl("quantize", &qgen_torch::quantize);
  m.impl("requantize", &qgen_torch::requantize);
  m.impl("quantize_plane", &qgen_torch::quantize_plane);
  m.impl("requantize_plane", &qgen_torch::requantize_plane);
  m.impl("gemm", &qgen_torch::gemm);
  m.impl("dequantize", &qgen_torch::dequantize);
}

// The module object Python imports (qgen_torch._C); importing it registers the ops above.
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.attr("arch") = qgen_torch::kArch; }
