#pragma once
// Asio for flock-bench: through broker/server/asio.hpp (a header only, which
// renames the <fcntl.h> `struct flock` that clashes with `namespace flock`),
// plus what the load generator uses beyond the server.
#include "broker/server/asio.hpp"

#include <boost/asio/write.hpp>

namespace flock::bench {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
}  // namespace flock::bench
