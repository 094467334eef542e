#include "native/shared/error.h"

namespace iz {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument:
      return "INVALID_ARGUMENT";
    case ErrorCode::ShapeMismatch:
      return "SHAPE_MISMATCH";
    case ErrorCode::DtypeMismatch:
      return "DTYPE_MISMATCH";
    case ErrorCode::Disposed:
      return "DISPOSED";
    case ErrorCode::OutOfMemory:
      return "OUT_OF_MEMORY";
    case ErrorCode::CorruptData:
      return "CORRUPT_DATA";
    case ErrorCode::Io:
      return "IO_ERROR";
    case ErrorCode::NoDevice:
      return "NO_DEVICE";
    case ErrorCode::DeviceMismatch:
      return "DEVICE_MISMATCH";
    case ErrorCode::Unsupported:
      return "UNSUPPORTED";
    case ErrorCode::Internal:
      return "INTERNAL";
  }
  return "INTERNAL";
}

}  // namespace iz
