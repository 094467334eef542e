// The element type of a token tensor on a device: { <name>: 'f32' | 'f16' | 'bf16' }.
#pragma once

#include <napi.h>

#include <string>

#include "native/napi/options.h"
#include "native/shared/error.h"
#include "native/shared/tokens/tome_hd.h"

namespace iz::napi {

// DtypeMismatch naming `what` for anything else.
inline iz::tokens::TokDType OptTokDType(const Napi::Object& o, const char* name, const std::string& what) {
  const std::string dt = OptString(o, name);
  if (dt == "f32") return iz::tokens::TokDType::F32;
  if (dt == "f16") return iz::tokens::TokDType::F16;
  if (dt == "bf16") return iz::tokens::TokDType::BF16;
  Fail(ErrorCode::DtypeMismatch, what + " must be f32, f16 or bf16, got " + dt);
}

}  // namespace iz::napi
