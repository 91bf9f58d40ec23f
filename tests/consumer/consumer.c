#include <stdio.h>

#include <monitor/monitor.h>

int main(void) {
  int rc = monitor("Shop.Api", "Orders.Placed", 1, 1, MONITOR_OP_SUM);
  printf("monitor() from C: %s\n", monitor_strerror(rc));
  return rc == MONITOR_OK ? 0 : 1;
}
