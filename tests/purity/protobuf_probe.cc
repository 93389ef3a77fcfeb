#include <google/protobuf/message.h>
int probe() { return 0; }
