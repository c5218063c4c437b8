// flockctl: the admin CLI.
//   flockctl passwd FILE USER [PASSWORD]   add or replace USER in a password file
//   flockctl passwd -D FILE USER           delete USER
//   flockctl version
// Password files use Mosquitto's format, so mosquitto_passwd works on them too.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "broker/auth/password_file.hpp"

namespace {

int usage() {
  std::cerr << "usage: flockctl passwd FILE USER [PASSWORD]\n"
               "       flockctl passwd -D FILE USER\n"
               "       flockctl version\n";
  return 2;
}

std::string read_password() {
  std::string password;
  if (isatty(STDIN_FILENO)) std::cerr << "Password: ";
  std::getline(std::cin, password);
  return password;
}

int passwd(std::vector<std::string> args) {
  bool remove = !args.empty() && args[0] == "-D";
  if (remove) args.erase(args.begin());
  if (args.size() < 2 || args.size() > 3 || (remove && args.size() != 2)) return usage();
  const std::string& path = args[0];
  const std::string& user = args[1];
  if (user.empty() || user.find(':') != std::string::npos) {
    std::cerr << "flockctl: user names cannot be empty or contain ':'\n";
    return 2;
  }
  std::vector<std::string> kept;
  {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(user + ":", 0) != 0) kept.push_back(line);
  }
  if (!remove) {
    std::string password = args.size() == 3 ? args[2] : read_password();
    kept.push_back(user + ":" + flock::auth::password_file::hash_password(password));
  }
  std::ostringstream text;
  for (const auto& l : kept) text << l << "\n";
  try {
    flock::auth::password_file::parse(text.str(), path);  // never write a file flockd would refuse
  } catch (const std::exception& e) {
    std::cerr << "flockctl: " << e.what() << "\n";
    return 1;
  }
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text.str();
    if (!out) {
      std::cerr << "flockctl: cannot write " << tmp << "\n";
      return 1;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::cerr << "flockctl: cannot replace " << path << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage();
  std::string cmd = args[0];
  args.erase(args.begin());
  if (cmd == "passwd") return passwd(args);
  if (cmd == "version" || cmd == "--version") {
    std::cout << "flockctl " << FLOCK_VERSION << "\n";
    return 0;
  }
  return usage();
}
