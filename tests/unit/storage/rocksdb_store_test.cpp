// What only the RocksDB store can meet: damaged files, a directory locked by
// another flockd, a log cut short by a crash. Damage must stop the start-up
// with one line naming the directory, and must never be "fixed" by deleting
// files: the data may still be recoverable by hand.
// <fcntl.h> declares a global `struct flock`, which cannot coexist with
// `namespace flock`: rename it while including (as broker/server/asio.hpp).
#define flock flock_posix_lock
#include <fcntl.h>
#undef flock
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "storage/group_commit_store.hpp"
#include "storage/rocksdb_backend.hpp"
#include "storage/store_factory.hpp"
#include "tests/contract/store_test_support.hpp"

namespace flock::storage {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::manual_clock;
using testing::queued_executor;
using testing::temp_dir;

std::map<std::string, std::uintmax_t> listing(const std::string& dir) {
  std::map<std::string, std::uintmax_t> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) out[e.path().filename().string()] = e.file_size();
  return out;
}

std::vector<fs::path> files_ending(const std::string& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    auto name = e.path().filename().string();
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> files_starting(const std::string& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

void overwrite(const fs::path& file, std::uintmax_t offset, const std::string& bytes) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << file;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

class rocksdb_store : public ::testing::Test {
 public:
  std::unique_ptr<ports::store> open(const std::string& path) {
    store_options o;
    o.dir = path;
    o.log = [](const std::string&) {};
    return open_rocksdb_store(o, executor, clock);
  }
  // A store with some sessions and queued messages, closed.
  void fill(const std::string& path, int sessions = 50) {
    auto store = open(path);
    store->load();
    std::vector<ports::store_op> ops;
    for (int i = 1; i <= sessions; ++i) {
      auto sid = static_cast<std::uint64_t>(i);
      ops.push_back(testing::make_session(sid, "client-" + std::to_string(i), 600));
      auto m = std::make_shared<core::message>();
      m->id = 1000 + sid;
      m->partitions = testing::partitions();
      m->topic = "t/" + std::to_string(i);
      m->payload = std::string(200, static_cast<char>('a' + i % 26));
      ops.push_back(ports::message_put{m});
      ops.push_back(ports::queued_put{sid, m->id, {1, false, {}}});
    }
    store->append(ops);
    ASSERT_TRUE(store->flush(5s));
  }
  // Opening and loading must fail with a message naming the directory.
  std::string open_error(const std::string& path) {
    try {
      auto store = open(path);
      store->load();
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  }

  queued_executor executor{1};
  manual_clock clock;
  temp_dir dir;
};

TEST_F(rocksdb_store, a_second_store_on_the_same_directory_is_refused) {
  auto first = open(dir.path());
  first->load();
  try {
    open(dir.path());
    FAIL() << "opened a directory in use";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("data directory " + dir.path() + " is in use by another flockd"),
              std::string::npos)
        << e.what();
  }
}

// What another flockd holds: a POSIX lock on LOCK (lockf and RocksDB's
// fcntl lock are the same lock on Linux), taken here by a child process.
TEST_F(rocksdb_store, a_directory_locked_by_another_process_is_refused) {
  fill(dir.path(), 1);
  const std::string lock_file = dir.path() + "/LOCK";
  int ready[2], release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // only async-signal-safe calls until _exit
    ::close(release[1]);  // so that the parent's close is seen as EOF
    int fd = ::open(lock_file.c_str(), O_RDWR);
    char c = (fd >= 0 && ::lockf(fd, F_TLOCK, 0) == 0) ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    (void)!::read(release[0], &c, 1);
    ::_exit(0);
  }
  ::close(release[0]);
  ::close(ready[1]);
  char locked = 0;
  ASSERT_EQ(::read(ready[0], &locked, 1), 1);
  auto error = locked == 'y' ? open_error(dir.path()) : "";
  ::close(release[1]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_EQ(locked, 'y');
  EXPECT_NE(error.find("data directory " + dir.path() + " is in use by another flockd"), std::string::npos) << error;
  ::close(ready[0]);
}

TEST_F(rocksdb_store, damaged_table_files_are_reported_and_kept) {
  fill(dir.path());
  open_rocksdb_backend(dir.path())->compact();
  auto tables = files_ending(dir.path(), ".sst");
  ASSERT_FALSE(tables.empty());
  for (const auto& t : tables) overwrite(t, fs::file_size(t) / 3, std::string(64, '\x5a'));
  const auto before = listing(dir.path());
  auto error = open_error(dir.path());
  EXPECT_NE(error.find("data directory " + dir.path() + " is corrupt"), std::string::npos) << error;
  EXPECT_NE(error.find("move it away or restore a backup"), std::string::npos) << error;
  for (const auto& [name, size] : before) EXPECT_TRUE(fs::exists(fs::path(dir.path()) / name)) << name;
  for (const auto& t : tables) EXPECT_EQ(fs::file_size(t), before.at(t.filename().string()));
}

// Damage inside a data block passes the checks at open; the scan of
// load() meets it and names the column family.
TEST_F(rocksdb_store, a_damaged_data_block_is_found_by_load) {
  {
    auto backend = open_rocksdb_backend(dir.path());
    kv_batch batch;
    for (int i = 0; i < 2000; ++i)
      batch.push_back({kv_write::kind::put, column::retained, "t/" + std::to_string(i), std::string(300, 'a' + i % 26)});
    ASSERT_TRUE(backend->write(batch, true).ok());
    backend->compact();
  }
  auto tables = files_ending(dir.path(), ".sst");
  ASSERT_EQ(tables.size(), 1u);
  ASSERT_GT(fs::file_size(tables[0]), 10000u);
  overwrite(tables[0], 5000, std::string(16, 'X'));
  auto store = open(dir.path());  // opens: the damage is in the data
  try {
    store->load();
    FAIL() << "load() read a damaged block";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("data directory " + dir.path() + " is corrupt: column family retained"), std::string::npos)
        << what;
  }
  store.reset();
  EXPECT_EQ(files_ending(dir.path(), ".sst"), tables);
}

TEST_F(rocksdb_store, a_truncated_table_file_is_reported_and_kept) {
  fill(dir.path());
  open_rocksdb_backend(dir.path())->compact();
  auto tables = files_ending(dir.path(), ".sst");
  ASSERT_FALSE(tables.empty());
  const auto size = fs::file_size(tables.back());
  fs::resize_file(tables.back(), size / 2);
  auto error = open_error(dir.path());
  EXPECT_NE(error.find("data directory " + dir.path()), std::string::npos) << error;
  EXPECT_NE(error.find("corrupt"), std::string::npos) << error;
  EXPECT_EQ(fs::file_size(tables.back()), size / 2);
}

TEST_F(rocksdb_store, a_damaged_current_file_is_reported_and_kept) {
  fill(dir.path());
  overwrite(fs::path(dir.path()) / "CURRENT", 0, "MANIFEST-garbage");
  const auto before = listing(dir.path());
  auto error = open_error(dir.path());
  EXPECT_NE(error.find("data directory " + dir.path()), std::string::npos) << error;
  EXPECT_EQ(listing(dir.path()), before);
}

TEST_F(rocksdb_store, a_damaged_manifest_is_reported_and_kept) {
  fill(dir.path());
  auto manifests = files_starting(dir.path(), "MANIFEST-");
  ASSERT_FALSE(manifests.empty());
  for (const auto& m : manifests) overwrite(m, 10, std::string(40, '\x77'));
  const auto before = listing(dir.path());
  auto error = open_error(dir.path());
  EXPECT_NE(error.find("data directory " + dir.path() + " is corrupt"), std::string::npos) << error;
  EXPECT_EQ(listing(dir.path()), before);
}

// Three groups written (async) one after the other, then a "crash": a copy
// of the files as the OS has them, while the store is still open.
void write_three_groups_and_crash(rocksdb_store& t, const std::string& from, const std::string& to) {
  auto store = t.open(from);
  store->load();
  for (std::uint64_t sid = 1; sid <= 3; ++sid) {
    std::vector<ports::store_op> ops{testing::make_session(sid, "c" + std::to_string(sid), 600)};
    store->append(ops);
    ASSERT_TRUE(store->flush(5s));
  }
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

void expect_first_two_groups(rocksdb_store& t, const std::string& dir) {
  auto store = t.open(dir);
  auto s = store->load();
  ASSERT_EQ(s.sessions.size(), 2u);
  EXPECT_EQ(s.sessions[0].session_id, 1u);
  EXPECT_EQ(s.sessions[1].session_id, 2u);
}

TEST_F(rocksdb_store, a_log_cut_short_keeps_every_complete_group_before_it) {
  temp_dir crashed;
  write_three_groups_and_crash(*this, dir.path(), crashed.path());
  auto logs = files_ending(crashed.path(), ".log");
  ASSERT_FALSE(logs.empty());
  fs::resize_file(logs.back(), fs::file_size(logs.back()) - 5);  // the last group's record, cut short
  expect_first_two_groups(*this, crashed.path());
}

TEST_F(rocksdb_store, a_garbled_log_tail_keeps_every_complete_group_before_it) {
  temp_dir crashed;
  write_three_groups_and_crash(*this, dir.path(), crashed.path());
  auto logs = files_ending(crashed.path(), ".log");
  ASSERT_FALSE(logs.empty());
  overwrite(logs.back(), fs::file_size(logs.back()) - 5, "\x13\x37\x13\x37\x13");  // a page half written
  expect_first_two_groups(*this, crashed.path());
}

// EIO in the log is fatal to an open RocksDB (Resume() refuses): the store
// must get writable again by reopening it, without losing a group.
TEST_F(rocksdb_store, an_io_error_in_the_log_is_survived_by_reopening) {
  auto fault = std::make_shared<std::atomic<injected_fault>>(injected_fault::none);
  std::vector<std::string> log;
  group_commit_options o;
  o.log = [&](const std::string& line) { log.push_back(line); };
  {
    group_commit_store store(open_rocksdb_backend(dir.path(), fault), o, executor, clock);
    store.load();
    std::vector<ports::store_op> first{testing::make_session(1, "a", 60)};
    store.append(first);
    ASSERT_TRUE(store.flush(5s));
    *fault = injected_fault::io_error;
    std::vector<ports::store_op> second{testing::make_session(2, "b", 60)};
    auto t = store.append(second);
    ASSERT_TRUE(testing::eventually([&] { return !store.healthy(); }));
    EXPECT_FALSE(store.flush(100ms));
    *fault = injected_fault::none;
    ASSERT_TRUE(store.flush(5s));
    EXPECT_TRUE(store.is_durable(t));
    EXPECT_TRUE(store.healthy());
    std::vector<ports::store_op> third{testing::make_session(3, "c", 60)};
    store.append(third);
    ASSERT_TRUE(store.flush(5s));
  }
  auto store = open(dir.path());
  EXPECT_EQ(store->load().sessions.size(), 3u);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_NE(log[0].find("input/output error"), std::string::npos) << log[0];
  EXPECT_NE(log[1].find("works again"), std::string::npos) << log[1];
}

TEST_F(rocksdb_store, a_directory_it_cannot_write_is_reported) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can write anywhere";
  fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
  auto error = open_error(dir.path());
  fs::permissions(dir.path(), fs::perms::owner_all);
  EXPECT_NE(error.find("data directory " + dir.path() + " is not readable/writable"), std::string::npos) << error;
}

TEST_F(rocksdb_store, writes_stop_before_the_disk_runs_out_and_never_reach_rocksdb) {
  const kv_batch batch{{kv_write::kind::put, column::retained, "t", "v"}};
  // A reserve larger than any disk: every write is refused up front.
  auto full = open_rocksdb_backend(dir.path(), nullptr, std::uint64_t{1} << 62);
  auto st = full->write(batch, false);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error.find("disk nearly full"), std::string::npos) << st.error;
  EXPECT_FALSE(full->get(column::retained, "t"));
  full.reset();
  // The same directory with room to spare writes as usual.
  auto roomy = open_rocksdb_backend(dir.path(), nullptr, 1);
  EXPECT_TRUE(roomy->write(batch, false).ok());
  EXPECT_EQ(roomy->get(column::retained, "t"), std::optional<std::string>("v"));
}

}  // namespace
}  // namespace flock::storage
