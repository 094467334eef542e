// Each binding file registers its functions with IZ_REGISTER_MODULE, so adding a
// feature never means editing addon.cpp.
#pragma once

#include <napi.h>

namespace iz::napi {

using ModuleInit = void (*)(Napi::Env env, Napi::Object exports);

struct ModuleRegistrar {
  ModuleRegistrar(const char* name, ModuleInit init);
};

void InitAllModules(Napi::Env env, Napi::Object exports);

}  // namespace iz::napi

#define IZ_REGISTER_MODULE(name, init) static ::iz::napi::ModuleRegistrar iz_registrar_##name(#name, init)
