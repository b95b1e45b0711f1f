//===- Status.h - error reporting without exceptions ------------*- C++ -*-===//

#ifndef W4A4_RUNTIME_STATUS_H
#define W4A4_RUNTIME_STATUS_H

#include <string>
#include <utility>

namespace w4a4::rt {

/// OK or an error message; the runtime reports bad input with it instead of
/// throwing or aborting.
class Status {
public:
  Status() = default;
  static Status error(std::string message) {
    Status s;
    s.message_ = std::move(message);
    s.ok_ = false;
    return s;
  }
  bool ok() const { return ok_; }
  const std::string &message() const { return message_; }

private:
  bool ok_ = true;
  std::string message_;
};

} // namespace w4a4::rt

#endif // W4A4_RUNTIME_STATUS_H
