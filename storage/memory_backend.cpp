// See memory_backend.hpp. Behaves like the RocksDB backend where the store
// can tell: atomic batches, ordered scans, range deletes with an exclusive
// end, all-or-nothing failure.
#include "storage/memory_backend.hpp"

namespace flock::storage {
namespace {

// The records of one column with begin <= key < end, until fn returns false.
template <class Column, class Fn>
void scan_column_range(const Column& col, std::string_view begin, std::string_view end, Fn&& fn) {
  for (auto it = col.lower_bound(begin); it != col.end() && it->first < end; ++it)
    if (!fn(it->first, it->second)) return;
}

class copied_view final : public kv_view {
 public:
  explicit copied_view(decltype(memory_disk::columns) columns) : columns_(std::move(columns)) {}
  void scan_range(column c, std::string_view begin, std::string_view end,
                  const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    scan_column_range(columns_[static_cast<std::size_t>(c)], begin, end, fn);
  }

 private:
  decltype(memory_disk::columns) columns_;
};

class memory_backend final : public kv_backend {
 public:
  explicit memory_backend(std::shared_ptr<memory_disk> disk) : disk_(std::move(disk)) {}

  write_status write(const kv_batch& batch, bool /*sync*/) override {
    if (disk_->failing.load()) {
      disk_->failed_writes.fetch_add(1);
      return {"simulated write failure (no space left on device)"};
    }
    std::lock_guard lock(disk_->mu);
    for (const auto& w : batch) {
      auto& col = disk_->columns[static_cast<std::size_t>(w.col)];
      switch (w.op) {
        case kv_write::kind::put: col.insert_or_assign(w.key, w.value); break;
        case kv_write::kind::del: col.erase(w.key); break;
        case kv_write::kind::del_range:
          col.erase(col.lower_bound(w.key), col.lower_bound(w.value));
          break;
      }
    }
    disk_->writes.fetch_add(1);
    return {};
  }

  void recover() override {}

  void scan(column c, const std::function<void(std::string_view, std::string_view)>& fn) const override {
    std::lock_guard lock(disk_->mu);
    for (const auto& [k, v] : disk_->columns[static_cast<std::size_t>(c)]) fn(k, v);
  }

  void scan_range(column c, std::string_view begin, std::string_view end,
                  const std::function<void(std::string_view, std::string_view)>& fn) const override {
    std::lock_guard lock(disk_->mu);
    scan_column_range(disk_->columns[static_cast<std::size_t>(c)], begin, end, [&](auto k, auto v) {
      fn(k, v);
      return true;
    });
  }

  std::optional<std::string> get(column c, std::string_view key) const override {
    std::lock_guard lock(disk_->mu);
    const auto& col = disk_->columns[static_cast<std::size_t>(c)];
    auto it = col.find(key);
    if (it == col.end()) return std::nullopt;
    return it->second;
  }

  std::string location() const override { return "memory store"; }

  // A copy of every column: the memory store serves tests, where that is small.
  std::unique_ptr<kv_view> view() const override {
    std::lock_guard lock(disk_->mu);
    return std::make_unique<copied_view>(disk_->columns);
  }

 private:
  std::shared_ptr<memory_disk> disk_;
};

}  // namespace

std::unique_ptr<kv_backend> open_memory_backend(std::shared_ptr<memory_disk> disk) {
  return std::make_unique<memory_backend>(std::move(disk));
}

}  // namespace flock::storage
