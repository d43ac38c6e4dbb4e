// The error hierarchy of libcore. Only a tool's main prints and exits; libcore throws.
#pragma once
#include <stdexcept>
#include <string>

namespace qkv {

// Base of every error libcore throws. exit_code() is what a tool returns for it.
class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
    virtual int exit_code() const { return 1; }
};

// Bad options or arguments: exit 2.
class UsageError : public Error {
  public:
    using Error::Error;
    int exit_code() const override { return 2; }
};

// A file cannot be opened, read or written.
class IoError : public Error {
  public:
    using Error::Error;
};

// A file is readable but its content is not what the format promises.
class FormatError : public Error {
  public:
    using Error::Error;
};

// Shapes, ranks, stages or models that do not fit together.
class ShapeError : public Error {
  public:
    using Error::Error;
};

// A run stopped by a signal after saving its work: exit 128 + the signal number.
class Interrupted : public Error {
  public:
    Interrupted(const std::string& what, int signal) : Error(what), signal_(signal) {}
    int exit_code() const override { return 128 + signal_; }

  private:
    int signal_;
};

} // namespace qkv
