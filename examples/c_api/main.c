/* c_api_example: two devices sync one message through a relay, using only the C API.
 *
 *   c_api_example ws://HOST:PORT/v1/sync [WORK_DIR]
 *
 * Opens two device homes (WORK_DIR/alice and WORK_DIR/bob; a fresh temporary directory when
 * WORK_DIR is omitted), makes alice create a group on the relay, bob join it with the invite
 * link, alice push a message, and waits (bounded) until bob receives it. Exits 0 on success.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blindsync/c/blindsync.h"

#define CALL_TIMEOUT_MS 30000
#define RECEIVE_TIMEOUT_MS 30000
#define WAIT_SLICE_MS 250

static const char kMessage[] = "hello from C";

static int fail(const char* what, const bs_error* err) {
  fprintf(stderr, "c_api_example: %s failed: %s (%d): %s\n", what, bs_code_name(err->code), err->code,
          err->message);
  return 1;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Opens a home and gives it an identity called name. */
static int open_device(const char* dir, const char* name, bs_client** out) {
  bs_error err;
  bs_client_options options;
  bs_identity identity;
  bs_client_options_init(&options);
  options.backoff_base_ms = 200; /* reconnect quickly: this is a demo, not a fleet */
  options.backoff_jitter_ms = 100;
  if (bs_client_open(dir, &options, out, &err) != BS_OK) return fail("bs_client_open", &err);
  if (bs_identity_get(*out, &identity) == 1) {
    printf("%s: device %.12s... (existing)\n", name, identity.device_id);
    return 0;
  }
  if (bs_identity_create(*out, name, CALL_TIMEOUT_MS, &identity, &err) != BS_OK) {
    return fail("bs_identity_create", &err);
  }
  printf("%s: device %.12s...\n", name, identity.device_id);
  return 0;
}

/* Prints and drops alice's events (connection changes, the push ack) without blocking. */
static void drain(bs_client* client, const char* who) {
  bs_event event;
  int i;
  for (i = 0; i < 100 && bs_poll_event(client, &event) == 1; ++i) {
    if (event.kind == BS_EVENT_BLOB_PUSHED) {
      printf("%s: blob %s stored by the relay at cursor %llu\n", who, event.blob_id,
             (unsigned long long)event.cursor);
    } else if (event.kind == BS_EVENT_ERROR) {
      printf("%s: error %s: %s\n", who, bs_code_name(event.code), event.message);
    }
    bs_event_free(&event);
  }
}

/* Waits until bob receives blob_id. Returns 0 when it did. */
static int receive(bs_client* alice, bs_client* bob, const char* blob_id) {
  double deadline = now_ms() + RECEIVE_TIMEOUT_MS;
  bs_error err;
  while (now_ms() < deadline) {
    bs_event event;
    int rc = bs_wait_event(bob, WAIT_SLICE_MS, &event);
    drain(alice, "alice");
    if (rc < 0) {
      fprintf(stderr, "c_api_example: bs_wait_event failed: %s\n", bs_code_name(-rc));
      return 1;
    }
    if (rc == 0) continue;
    if (event.kind == BS_EVENT_CONNECTED) {
      printf("bob: connected to %s\n", event.relay_url);
    } else if (event.kind == BS_EVENT_BLOB_RECEIVED && strcmp(event.blob_id, blob_id) == 0) {
      int same = event.data_len == strlen(kMessage) && memcmp(event.data, kMessage, event.data_len) == 0;
      printf("bob: received blob %s (cursor %llu, %zu bytes) from %.12s...: %.*s\n", event.blob_id,
             (unsigned long long)event.cursor, event.data_len, event.sender_id, (int)event.data_len,
             (const char*)event.data);
      bs_event_free(&event);
      if (!same) {
        fprintf(stderr, "c_api_example: received bytes differ from what was pushed\n");
        return 1;
      }
      /* Persist the cursor now rather than on the next poll. */
      if (bs_commit(bob, &err) != BS_OK) return fail("bs_commit", &err);
      return 0;
    }
    bs_event_free(&event);
  }
  fprintf(stderr, "c_api_example: bob did not receive the blob within %d ms\n", RECEIVE_TIMEOUT_MS);
  return 1;
}

static int run(const char* relay_url, const char* work_dir) {
  char alice_dir[4096];
  char bob_dir[4096];
  bs_client* alice = NULL;
  bs_client* bob = NULL;
  bs_group_info group;
  bs_group_info joined;
  char* invite = NULL;
  char blob_id[33];
  char* status = NULL;
  bs_error err;
  int rc = 1;
  memset(&group, 0, sizeof group);
  memset(&joined, 0, sizeof joined);

  snprintf(alice_dir, sizeof alice_dir, "%s/alice", work_dir);
  snprintf(bob_dir, sizeof bob_dir, "%s/bob", work_dir);
  if (open_device(alice_dir, "alice", &alice) != 0) goto done;
  if (open_device(bob_dir, "bob", &bob) != 0) goto done;

  if (bs_group_create(alice, &relay_url, 1, "c-example", CALL_TIMEOUT_MS, &group, &invite, &err) != BS_OK) {
    fail("bs_group_create", &err);
    goto done;
  }
  /* The invite link holds the group secret: hand it over, never print it. */
  printf("alice: created group %.12s... on %s\n", group.group_id, group.relay_url);
  if (bs_group_join(bob, invite, CALL_TIMEOUT_MS, &joined, &err) != BS_OK) {
    fail("bs_group_join", &err);
    goto done;
  }
  printf("bob: joined group %.12s... (%s)\n", joined.group_id, joined.name);
  if (strcmp(group.group_id, joined.group_id) != 0) {
    fprintf(stderr, "c_api_example: joined a different group\n");
    goto done;
  }

  if (bs_push(alice, group.group_id, kMessage, strlen(kMessage), 0, blob_id, &err) != BS_OK) {
    fail("bs_push", &err);
    goto done;
  }
  printf("alice: pushed blob %s (%zu bytes, durable in the outbox)\n", blob_id, strlen(kMessage));

  if (receive(alice, bob, blob_id) != 0) goto done;

  status = bs_status_json(bob, &err);
  if (status == NULL) {
    fail("bs_status_json", &err);
    goto done;
  }
  printf("bob: status %s\n", status);
  rc = 0;

done:
  bs_string_free(status);
  bs_string_free(invite);
  bs_group_info_free(&group);
  bs_group_info_free(&joined);
  bs_client_close(bob);
  bs_client_close(alice);
  return rc;
}

int main(int argc, char** argv) {
  char temp_dir[] = "/tmp/blindsync-c-example-XXXXXX";
  const char* work_dir;
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s ws://HOST:PORT/v1/sync [WORK_DIR]\n", argv[0]);
    return 2;
  }
  printf("blindsync C API %s\n", bs_version());
  if (argc == 3) {
    work_dir = argv[2];
  } else {
    work_dir = mkdtemp(temp_dir);
    if (work_dir == NULL) {
      perror("c_api_example: mkdtemp");
      return 1;
    }
    printf("device homes in %s\n", work_dir);
  }
  return run(argv[1], work_dir);
}
