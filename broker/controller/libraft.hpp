#pragma once
// libraft's header, which has no extern "C" of its own.
extern "C" {
#include <raft.h>
}
