// Lets Catch print boost::system::result<T> for any T (Boost's own operator<<
// needs T to be printable, and our resource types are not).
#pragma once

#include <string>

#include <boost/system/result.hpp>
#include <catch2/catch.hpp>

namespace Catch {
template <class T>
struct StringMaker<boost::system::result<T>> {
  static std::string convert(const boost::system::result<T>& r) {
    return r.has_value() ? std::string("{value}") : "{error: " + r.error().message() + "}";
  }
};
}  // namespace Catch
