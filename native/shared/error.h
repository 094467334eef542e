// One error type for everything the native core reports. The N-API layer turns
// it into a JS error with a stable `code`, which lib/errors.ts wraps as InferzipError.
#pragma once

#include <stdexcept>
#include <string>

namespace iz {

enum class ErrorCode {
  InvalidArgument,  // a value the caller passed is not acceptable
  ShapeMismatch,    // tensor shapes disagree or are not what the operation needs
  DtypeMismatch,    // element type is not what the operation needs
  Disposed,         // a buffer or object was used after dispose()
  OutOfMemory,      // host or device allocation failed
  CorruptData,      // a file or compressed stream is malformed or hostile
  Io,               // the operating system refused a read or write
  NoDevice,         // a CUDA device was requested but none is usable
  DeviceMismatch,   // tensors or buffers of one operation live on different devices
  Unsupported,      // valid request this build or backend cannot do
  Internal,         // a bug in inferzip: please report it
};

const char* ErrorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void Fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

// Checks a condition on caller-supplied data; throws instead of asserting so bad
// input can never crash the process.
#define IZ_CHECK(cond, code, msg)                          \
  do {                                                     \
    if (!(cond)) ::iz::Fail(::iz::ErrorCode::code, (msg)); \
  } while (0)

}  // namespace iz
