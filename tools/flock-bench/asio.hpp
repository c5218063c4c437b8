#pragma once
// Include Asio through this header only. Asio includes <fcntl.h>, whose
// global `struct flock` clashes with `namespace flock`; include it once with
// the name changed (the same trick as broker/server/asio.hpp, which
// flock-bench does not use so that it depends on broker/codec only).
#define flock flock_posix_lock
#include <fcntl.h>
#undef flock

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace flock::bench {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
}  // namespace flock::bench
