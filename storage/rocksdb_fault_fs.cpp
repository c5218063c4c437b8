// See rocksdb_fault_fs.hpp. Appends and syncs of open files fail, and so
// does creating a file (a flush, or a new log during recovery).
#include "storage/rocksdb_fault_fs.hpp"

namespace flock::storage {
namespace {

using fault_switch = std::shared_ptr<const std::atomic<injected_fault>>;

// What the POSIX errors become in RocksDB: ENOSPC is NoSpace, EIO a plain
// IOError.
rocksdb::IOStatus injected(const fault_switch& f) {
  switch (f->load()) {
    case injected_fault::none: return rocksdb::IOStatus::OK();
    case injected_fault::no_space: return rocksdb::IOStatus::NoSpace("flock fault switch: no space left on device");
    case injected_fault::io_error: break;
  }
  return rocksdb::IOStatus::IOError("flock fault switch: input/output error");
}

class fault_file final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  fault_file(std::unique_ptr<rocksdb::FSWritableFile> f, fault_switch fault)
      : FSWritableFileOwnerWrapper(std::move(f)), fault_(std::move(fault)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    auto s = injected(fault_);
    return s.ok() ? target()->Append(data, o, d) : s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo& v, rocksdb::IODebugContext* d) override {
    auto s = injected(fault_);
    return s.ok() ? target()->Append(data, o, v, d) : s;
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    auto s = injected(fault_);
    return s.ok() ? target()->Flush(o, d) : s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    auto s = injected(fault_);
    return s.ok() ? target()->Sync(o, d) : s;
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* d) override {
    auto s = injected(fault_);
    return s.ok() ? target()->Fsync(o, d) : s;
  }

 private:
  fault_switch fault_;
};

class fault_fs final : public rocksdb::FileSystemWrapper {
 public:
  fault_fs(std::shared_ptr<rocksdb::FileSystem> base, fault_switch fault)
      : FileSystemWrapper(std::move(base)), fault_(std::move(fault)) {}

  const char* Name() const override { return "flock_fault_fs"; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r, rocksdb::IODebugContext* d) override {
    auto s = injected(fault_);
    return s.ok() ? wrap(target()->NewWritableFile(f, o, r, d), r) : s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* d) override {
    auto s = injected(fault_);
    return s.ok() ? wrap(target()->ReopenWritableFile(f, o, r, d), r) : s;
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* d) override {
    auto s = injected(fault_);
    return s.ok() ? wrap(target()->ReuseWritableFile(f, old, o, r, d), r) : s;
  }

 private:
  rocksdb::IOStatus wrap(rocksdb::IOStatus s, std::unique_ptr<rocksdb::FSWritableFile>* r) {
    if (s.ok()) *r = std::make_unique<fault_file>(std::move(*r), fault_);
    return s;
  }
  fault_switch fault_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> make_fault_fs(std::shared_ptr<rocksdb::FileSystem> base, fault_switch fault) {
  return std::make_shared<fault_fs>(std::move(base), std::move(fault));
}

}  // namespace flock::storage
