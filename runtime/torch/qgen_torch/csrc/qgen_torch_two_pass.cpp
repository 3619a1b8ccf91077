// qgen_torch_two_pass.cpp — the exact two-pass NVFP4 GEMM as torch.library ops (NUMERICS §6.4):
//   qgen::gemm_bf16_planes(a, b, alpha)  C = alpha . A . B^T from ready bf16 planes A [m, k], B [n, k] (the exact
//                                        e2m1 * scale values, no tensor scale) and a device fp32 alpha [1]
//   qgen::gemm_two_pass(A NVFP4, B NVFP4) dequantize each operand with qgen::dequantize and a tensor scale of 1 (exact
//                                        in bf16), then gemm_bf16_planes with alpha = f32(tA * tB) computed on the
//                                        device
// Both run on the current stream and never synchronise. Fake implementations live in qgen_torch/ops.py.
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <map>
#include <mutex>
#include <string>

#include "qgen_two_pass.h"

namespace qgen_torch_two_pass {
namespace {

constexpr size_t kWorkspaceBytes = 32ull << 20;
constexpr const char* kDequantizeKernel = "dequantize_nvfp4_bf16";  // NVFP4 (128x4 scales) -> bf16

std::string dec(int64_t v) { return std::to_string(v); }

// Per device: a float tensor {1, 0}: the tensor scale of an exact dequantization and cuBLASLt's beta. Kept for the
// life of the process (never freed: a static tensor destroyed after CUDA shuts down would crash at exit).
const at::Tensor& one_zero(const at::Device& device) {
  static std::mutex lock;
  static auto* tensors = new std::map<int, at::Tensor>();
  const std::lock_guard<std::mutex> guard(lock);
  auto it = tensors->find(device.index());
  if (it == tensors->end()) {
    at::Tensor t = at::tensor({1.0f, 0.0f}, at::TensorOptions().dtype(at::kFloat)).to(device);
    it = tensors->emplace(device.index(), t).first;
  }
  return it->second;
}

void check_plane(const at::Tensor& t, const char* arg) {
  TORCH_CHECK(t.is_cuda(), "qgen::gemm_bf16_planes: ", arg, " must be a CUDA tensor; got device ", t.device().str());
  TORCH_CHECK(t.scalar_type() == at::kBFloat16, "qgen::gemm_bf16_planes: ", arg, " must have dtype bfloat16; got ",
              t.scalar_type());
  TORCH_CHECK(t.dim() == 2, "qgen::gemm_bf16_planes: ", arg, " must be 2-D; got ", dec(t.dim()), " dimensions");
  TORCH_CHECK(t.is_contiguous(), "qgen::gemm_bf16_planes: ", arg, " must be contiguous");
  TORCH_CHECK((reinterpret_cast<uintptr_t>(t.data_ptr()) & 15u) == 0, "qgen::gemm_bf16_planes: ", arg,
              " must be 16-byte aligned");
}

at::Tensor gemm_bf16_planes(const at::Tensor& a, const at::Tensor& b, const at::Tensor& alpha) {
  check_plane(a, "a");
  check_plane(b, "b");
  TORCH_CHECK(a.size(1) == b.size(1), "qgen::gemm_bf16_planes: a is [", dec(a.size(0)), ", ", dec(a.size(1)),
              "] and b is [", dec(b.size(0)), ", ", dec(b.size(1)), "]; allowed: the same K (C = A . B^T)");
  TORCH_CHECK(a.size(1) % 8 == 0, "qgen::gemm_bf16_planes: k = ", dec(a.size(1)), "; allowed: a multiple of 8");
  TORCH_CHECK(a.device() == b.device() && a.device() == alpha.device(),
              "qgen::gemm_bf16_planes: a, b and alpha must be on one device");
  TORCH_CHECK(alpha.scalar_type() == at::kFloat && alpha.numel() == 1 && alpha.is_contiguous(),
              "qgen::gemm_bf16_planes: alpha must be a device float32 tensor of 1 element; got ", alpha.scalar_type(),
              " with ", dec(alpha.numel()), " elements");
  const c10::cuda::CUDAGuard guard(a.device());
  const int64_t m = a.size(0), n = b.size(0), k = a.size(1);
  at::Tensor c = at::empty({m, n}, a.options());
  if (m == 0 || n == 0) return c;
  if (k == 0) return c.zero_();
  at::Tensor workspace = at::empty({static_cast<int64_t>(kWorkspaceBytes)}, a.options().dtype(at::kByte));
  const float* zero = one_zero(a.device()).data_ptr<float>() + 1;
  char why[160] = {0};
  const int r = qgen_two_pass::gemm_bf16(at::cuda::getCurrentCUDABlasLtHandle(), a.data_ptr(), b.data_ptr(),
                                         c.data_ptr(), m, n, k, alpha.data_ptr<float>(), zero, workspace.data_ptr(),
                                         kWorkspaceBytes, c10::cuda::getCurrentCUDAStream(), why);
  TORCH_CHECK(r == 0, "qgen::gemm_bf16_planes: ", why);
  return c;
}

at::Tensor dequantize_op(const at::Tensor& codes, const at::Tensor& scales, const at::Tensor& ts) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("qgen::dequantize", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const std::string&)>();
  return op.call(codes, scales, ts, kDequantizeKernel);
}

at::Tensor gemm_two_pass(const at::Tensor& a_codes, const at::Tensor& a_scales, const at::Tensor& a_ts,
                         const at::Tensor& b_codes, const at::Tensor& b_scales, const at::Tensor& b_ts) {
  TORCH_CHECK(a_ts.is_cuda() && b_ts.is_cuda() && a_ts.scalar_type() == at::kFloat &&
                  b_ts.scalar_type() == at::kFloat && a_ts.numel() == 1 && b_ts.numel() == 1,
              "qgen::gemm_two_pass: a_tensor_scale and b_tensor_scale must be CUDA float32 tensors of 1 element");
  const c10::cuda::CUDAGuard guard(a_codes.device());
  const at::Tensor one = one_zero(a_codes.device()).narrow(0, 0, 1);
  // The planes are the exact values e2m1 * scale (tensor scale 1; NUMERICS §6.4); dequantize checks the operands.
  const at::Tensor a = dequantize_op(a_codes, a_scales, one);
  const at::Tensor b = dequantize_op(b_codes, b_scales, one);
  return gemm_bf16_planes(a, b, at::mul(a_ts, b_ts));  // alpha = f32(tA * tB), as the fused kernels' epilogue
}

}  // namespace
}  // namespace qgen_torch_two_pass

TORCH_LIBRARY_FRAGMENT(qgen, m) {
  m.def("gemm_bf16_planes(Tensor a, Tensor b, Tensor alpha) -> Tensor");
  m.def(
      "gemm_two_pass(Tensor a_codes, Tensor a_scales, Tensor a_tensor_scale, Tensor b_codes, Tensor b_scales, "
      "Tensor b_tensor_scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(qgen, CUDA, m) {
  m.impl("gemm_bf16_planes", &qgen_torch_two_pass::gemm_bf16_planes);
  m.impl("gemm_two_pass", &qgen_torch_two_pass::gemm_two_pass);
}
