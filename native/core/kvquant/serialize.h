// A KV cache's saved form: named little-endian byte sections, made and checked here in core
// so the binding and TypeScript only move bytes. Sections: "state" (token counts, flags),
// "channel_order" (i16 [d]), "units" (u64 per stream), "residual.k" / "residual.v" /
// "residual.score" / "residual.count" (f32, streams concatenated, each prefixed by its
// length), "plane_strides" (u64 [planes]) and "plane.<name>" (u8 [streams][stride]).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "native/core/kvquant/cache.h"

namespace iz::kv {

using Sections = std::map<std::string, std::vector<uint8_t>>;

// Plane names in native order (layout.h's Plane enum); saved files name planes by these.
extern const char* const kPlaneNames[kNumPlanes];

Sections SerializeCache(const KvCache& cache);

// Restores sections made by SerializeCache into a cache created with the same options.
// Every size is cross-checked against the options and token counts; throws CorruptData.
void DeserializeCache(KvCache& cache, const Sections& sections);

}  // namespace iz::kv
