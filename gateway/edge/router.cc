#include "gateway/edge/router.h"

namespace paygate::edge {
namespace {

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 1;  // Paths start with '/'; the caller checks.
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    out.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool IsPlaceholder(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

void Router::Add(Route route) {
  segments_.push_back(Split(route.pattern));
  routes_.push_back(std::move(route));
}

Router::Match Router::Find(http::verb method, std::string_view path) const {
  Match match;
  if (path.empty() || path.front() != '/') return match;
  // The query string is not part of the route.
  path = path.substr(0, path.find('?'));
  // Compare segment by segment without splitting the path into strings: this runs on every request.
  for (size_t i = 0; i < routes_.size(); ++i) {
    const auto& pattern = segments_[i];
    std::vector<std::string> params;
    size_t start = 1;
    bool same = true;
    size_t s = 0;
    for (; s < pattern.size() && same; ++s) {
      if (start > path.size()) {
        same = false;
        break;
      }
      size_t end = path.find('/', start);
      if (end == std::string_view::npos) end = path.size();
      const std::string_view part = path.substr(start, end - start);
      if (IsPlaceholder(pattern[s])) {
        same = !part.empty();
        params.emplace_back(part);
      } else {
        same = pattern[s] == part;
      }
      start = end + 1;
    }
    // Every pattern segment matched and the path has no segment left.
    if (!same || start <= path.size()) continue;
    if (routes_[i].method != method) {
      match.other_method = true;
      continue;
    }
    match.route = &routes_[i];
    match.params = std::move(params);
    match.other_method = false;
    return match;
  }
  return match;
}

}  // namespace paygate::edge
