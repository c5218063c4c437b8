#include "broker/auth/password_file.hpp"

#include <gtest/gtest.h>

using flock::auth::password_file;

namespace {

// Written by `mosquitto_passwd -b -c FILE alice secret` (Mosquitto 2.0.11).
constexpr const char* mosquitto_line =
    "alice:$7$101$MxXxPDf+uqS21jDO$vVVayiPP3pyVH/BjprO9yPEiN0jFoOGS4IwsU7D+Y96GWLIz2O126S1Hy7LXOeNa/o2LVj18LVA+E2mAyVGIrA==\n";

TEST(password_file, accepts_mosquitto_passwd_pbkdf2_entries) {
  auto f = password_file::parse(mosquitto_line, "test");
  EXPECT_TRUE(f.check("alice", "secret"));
  EXPECT_FALSE(f.check("alice", "Secret"));
  EXPECT_FALSE(f.check("alice", std::nullopt));
  EXPECT_FALSE(f.check("bob", "secret"));
}

TEST(password_file, hash_password_round_trips) {
  auto line = "bob:" + password_file::hash_password("pw") + "\n# comment\n\n";
  auto f = password_file::parse(line, "test");
  EXPECT_EQ(f.size(), 1u);
  EXPECT_TRUE(f.check("bob", "pw"));
  EXPECT_FALSE(f.check("bob", "p"));
}

TEST(password_file, malformed_lines_name_file_and_line) {
  try {
    password_file::parse("# users\nalice:plaintext\n", "users.txt");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("users.txt:2:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(password_file::parse("a:$7$x$AAAA$AAAA\n", "f"), std::runtime_error);
  EXPECT_THROW(password_file::parse("a:$7$101$!!$AAAA\n", "f"), std::runtime_error);
  EXPECT_THROW(password_file::load("/nonexistent/flock-passwords"), std::runtime_error);
}

}  // namespace
