#include <sqlite3.h>
int probe() { return 0; }
