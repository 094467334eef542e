// Exports one native operation twice: `name` runs on the calling (main) thread,
// `nameAsync` on a libuv worker and returns a Promise. Shapes are parsed on the
// calling thread (a bad shape throws at once); value checks (NaN, sizes) run with
// the work, so the async variant rejects on them.
#pragma once

#include <napi.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "native/napi/util.h"

namespace iz::napi {

template <typename Args, typename Result>
struct PairedOp {
  const char* name;  // a string literal (RunAsync keeps the pointer)
  Args (*parse)(const Napi::CallbackInfo&);
  Result (*run)(const Args&);
  Napi::Value (*to_js)(Napi::Env, const Result&);
};

template <typename Args, typename Result>
void ExportPaired(Napi::Env env, Napi::Object exports, PairedOp<Args, Result> op) {
  const std::string name = op.name;
  exports.Set(name, Napi::Function::New(
                        env,
                        [op](const Napi::CallbackInfo& call) {
                          return Guard(call, [op](const Napi::CallbackInfo& info) -> Napi::Value {
                            const Args a = op.parse(info);
                            return op.to_js(info.Env(), op.run(a));
                          });
                        },
                        name));
  exports.Set(name + "Async", Napi::Function::New(
                                  env,
                                  [op](const Napi::CallbackInfo& call) {
                                    return Guard(call, [op](const Napi::CallbackInfo& info) -> Napi::Value {
                                      auto a = std::make_shared<Args>(op.parse(info));
                                      return RunAsync(info.Env(), op.name, [a, op]() -> Completion {
                                        auto r = std::make_shared<Result>(op.run(*a));
                                        return [r, op](Napi::Env done_env) { return op.to_js(done_env, *r); };
                                      });
                                    });
                                  },
                                  name + "Async"));
}

// Copies a vector into a new typed array.
inline Napi::Int32Array ToInt32Array(Napi::Env env, const std::vector<int32_t>& v) {
  auto out = Napi::Int32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(out.Data(), v.data(), v.size() * 4);
  return out;
}
inline Napi::Float32Array ToFloat32Array(Napi::Env env, const std::vector<float>& v) {
  auto out = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(out.Data(), v.data(), v.size() * 4);
  return out;
}

}  // namespace iz::napi
