#include <grpcpp/server.h>
int probe() { return 0; }
