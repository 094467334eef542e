// The TempMe options both mergeClips bindings read (host arrays in reduce.cpp, device
// memory in clips.cpp): { t, p, c, imgKeep, crossKeep, intraKeep, groups? (Int32Array) }.
#pragma once

#include <napi.h>

#include "native/core/tokens/reduce.h"

namespace iz::napi {

iz::tokens::ClipParams ParseClipParams(const Napi::Object& o);

}  // namespace iz::napi
