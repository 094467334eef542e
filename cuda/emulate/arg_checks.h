// inferzip CUDA emulator: launch-time checks of the pointers inside inferzip's struct kernel
// arguments (a plain pointer argument is checked generically in cuda_runtime.h). rewrite.mjs
// includes this at the end of every generated kernel file; the overloads are found by
// argument-dependent lookup when Config::Run's checks are instantiated, at the end of the file.
// Each pointer must be null or device memory of the launching device, and where the struct
// carries the size, the whole range must lie inside one allocation.
#pragma once

#include "cuda/df11/decode.h"
#include "cuda/emulate/cuda_runtime.h"
#include "cuda/kvquant/kernels.h"

namespace iz_emu {
// Dies unless [p, p + bytes) is null (bytes ignored) or inside one device allocation of the
// current device. `field` names it in the message.
void CheckPointerRange(const LaunchInfo& info, int index, const char* field, const void* p, size_t bytes);
}  // namespace iz_emu

namespace iz::cuda::df11 {
inline void CheckArg(const ::iz_emu::LaunchInfo& info, int index, const DeviceUnit& u) {
  using ::iz_emu::CheckPointerRange;
  CheckPointerRange(info, index, "DeviceUnit::luts", u.luts, (size_t(u.n_tables) + 1) * 256);
  CheckPointerRange(info, index, "DeviceUnit::encoded_exponent", u.encoded_exponent, u.encoded_bytes);
  CheckPointerRange(info, index, "DeviceUnit::sign_mantissa", u.sign_mantissa, u.n_elements);
  CheckPointerRange(info, index, "DeviceUnit::output_positions", u.output_positions, (u.n_blocks + 1) * 4);
  CheckPointerRange(info, index, "DeviceUnit::gaps", u.gaps, u.gaps_bytes);
}
}  // namespace iz::cuda::df11

namespace iz::kv::gpu {
inline void CheckArg(const ::iz_emu::LaunchInfo& info, int index, const Planes& P) {
  for (int p = 0; p < kNumPlanes; ++p) ::iz_emu::CheckPointerRange(info, index, "Planes::base[]", P.base[p], 0);
}
inline void CheckArg(const ::iz_emu::LaunchInfo& info, int index, const AttentionArgs& a) {
  using ::iz_emu::CheckPointerRange;
  CheckPointerRange(info, index, "AttentionArgs::q", a.q, 0);
  CheckPointerRange(info, index, "AttentionArgs::rk", a.rk, 0);
  CheckPointerRange(info, index, "AttentionArgs::rv", a.rv, 0);
  CheckPointerRange(info, index, "AttentionArgs::basis", a.basis, 0);
  CheckPointerRange(info, index, "AttentionArgs::out", a.out, 0);
}
}  // namespace iz::kv::gpu
