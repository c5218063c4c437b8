#pragma once
// Include Asio through this header, never directly.
//
// Asio includes <fcntl.h>, which declares a global `struct flock`, and a
// global `struct flock` and our `namespace flock` cannot both exist in one
// translation unit (whichever comes second fails to compile). So <fcntl.h>
// is included once here with its `flock` renamed; its include guard then keeps
// Asio's own #include <fcntl.h> from declaring the name again. Order with
// other flock headers does not matter. Nothing in flock uses struct flock.
#define flock flock_posix_lock
#include <fcntl.h>
#undef flock

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace flock::server {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
}  // namespace flock::server
