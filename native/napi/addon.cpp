// Entry point of the inferzip addon: collects every registered binding module.
#include <utility>
#include <vector>

#include "native/napi/registry.h"

namespace iz::napi {

namespace {
std::vector<std::pair<const char*, ModuleInit>>& Modules() {
  static std::vector<std::pair<const char*, ModuleInit>> modules;
  return modules;
}
}  // namespace

ModuleRegistrar::ModuleRegistrar(const char* name, ModuleInit init) { Modules().emplace_back(name, init); }

void InitAllModules(Napi::Env env, Napi::Object exports) {
  for (auto& [name, init] : Modules()) init(env, exports);
}

}  // namespace iz::napi

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  iz::napi::InitAllModules(env, exports);
  return exports;
}

NODE_API_MODULE(inferzip, Init)
