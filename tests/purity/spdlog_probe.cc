#include <spdlog/spdlog.h>
int probe() { return 0; }
