/* Installed-package consumer of the C API: opens a home, creates an identity, prints it.
 * Usage: consumer_c HOME_DIR. Exit 0 when everything behaved. */
#include <stdio.h>
#include <string.h>

#include "blindsync/c/blindsync.h"

int main(int argc, char** argv) {
  bs_client* client = NULL;
  bs_identity identity;
  bs_error err;
  if (argc != 2) {
    fprintf(stderr, "usage: consumer_c HOME_DIR\n");
    return 2;
  }
  if (bs_client_open(argv[1], NULL, &client, &err) != BS_OK) {
    fprintf(stderr, "bs_client_open: %s: %s\n", bs_code_name(err.code), err.message);
    return 1;
  }
  if (bs_identity_create(client, "consumer-c", 60000, &identity, &err) != BS_OK) {
    fprintf(stderr, "bs_identity_create: %s: %s\n", bs_code_name(err.code), err.message);
    bs_client_close(client);
    return 1;
  }
  bs_client_close(client);
  if (strlen(identity.device_id) != 64) return 1;
  printf("consumer_c %s: device %s ok\n", bs_version(), identity.device_id);
  return 0;
}
