/* blindsync C API: zero-knowledge sync for apps written in C or bound from other languages
 * (Python ctypes, Swift, Go cgo, ...). A thin shim over blindsync::AsyncClient
 * (blindsync/client/async_client.h); read that header for the sync model.
 *
 * Model
 *   - A bs_client is one device home (a directory holding the local store). It owns a worker
 *     thread that keeps every group connected to its relays, drains the durable outbox and
 *     receives blobs. The app pushes bytes and polls events; encryption is invisible.
 *   - Incoming blobs and results arrive as events (bs_poll_event / bs_wait_event). A blob handed
 *     out by bs_poll_event is committed (its cursor persisted) by the next bs_poll_event /
 *     bs_wait_event call or by bs_commit: a crash while handling it re-delivers it.
 *
 * Errors
 *   - Nothing crosses this boundary as a C++ exception. Every fallible function returns an int
 *     code: BS_OK (0) on success, otherwise one of the BS_ERR_* codes below, and fills *err
 *     (when err is not NULL) with the same code and a NUL-terminated message.
 *   - Messages never contain payloads or secrets.
 *
 * Ownership
 *   - Strings and arrays this API returns are owned by the caller and released with the free
 *     function named in each function's comment (bs_string_free, bs_group_info_free, ...).
 *   - Strings passed in are UTF-8, NUL-terminated, and only read during the call.
 *
 * Thread-safety
 *   - Every function taking a bs_client* may be called from any thread, concurrently, EXCEPT
 *     bs_client_close, which must be the last call on that client and must not run inside the
 *     notify callback. Events should be consumed by one thread (the commit rule above is
 *     per client, not per thread).
 *   - Free functions (bs_code_name, bs_version, bs_*_free) are thread-safe.
 *
 * Identifiers travel as lower-case hex text: group and device ids are 64 characters, blob ids
 * 32 characters (buffers below include the terminating NUL).
 */
#ifndef BLINDSYNC_C_BLINDSYNC_H_
#define BLINDSYNC_C_BLINDSYNC_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(BLINDSYNC_C_BUILDING_SHARED)
#    define BLINDSYNC_C_API __declspec(dllexport)
#  elif defined(BLINDSYNC_C_USING_SHARED)
#    define BLINDSYNC_C_API __declspec(dllimport)
#  else
#    define BLINDSYNC_C_API
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define BLINDSYNC_C_API __attribute__((visibility("default")))
#else
#  define BLINDSYNC_C_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Error codes (the values of blindsync::Code; wire codes are DESIGN.md's) ---------------- */

#define BS_OK 0
#define BS_ERR_INVALID_MESSAGE 1000
#define BS_ERR_UNKNOWN_GROUP 1001
#define BS_ERR_UNAUTHORIZED 1002
#define BS_ERR_DEVICE_REVOKED 1003
#define BS_ERR_NOT_BLOB_OWNER 1004
#define BS_ERR_UNSUPPORTED_VERSION 1005
#define BS_ERR_INVALID_STATE 1006
#define BS_ERR_HELLO_TIMEOUT 1007
#define BS_ERR_RATE_LIMITED 2000
#define BS_ERR_BLOB_TOO_LARGE 2001
#define BS_ERR_GROUP_QUOTA_EXCEEDED 2002
#define BS_ERR_INVALID_PUSH_TOKEN 2003
#define BS_ERR_GROUP_FULL 2004
#define BS_ERR_RELAY_OVERLOADED 3000
#define BS_ERR_RELAY_SHUTTING_DOWN 3001
#define BS_ERR_INTERNAL 3002
#define BS_ERR_STORAGE_FULL 3003
#define BS_ERR_INVALID_ARGUMENT 9000
#define BS_ERR_NOT_FOUND 9001
#define BS_ERR_ALREADY_EXISTS 9002
#define BS_ERR_IO_ERROR 9003
#define BS_ERR_CRYPTO_FAILURE 9004
#define BS_ERR_TIMEOUT 9005
#define BS_ERR_CONNECTION_CLOSED 9006
#define BS_ERR_EXPIRED 9007
#define BS_ERR_STORAGE_ERROR 9008
/* Codes of the C layer only. */
#define BS_ERR_OUT_OF_MEMORY 9900
#define BS_ERR_UNEXPECTED 9901 /* an internal failure the library could not classify */

#define BS_ERROR_MESSAGE_SIZE 256

/* An error report. message is always NUL-terminated (truncated to fit). */
typedef struct bs_error {
  int code;
  char message[BS_ERROR_MESSAGE_SIZE];
} bs_error;

/* The canonical name of a code ("INVALID_ARGUMENT", "TIMEOUT", ...), or "UNKNOWN".
 * Returns a static string: never free it. */
BLINDSYNC_C_API const char* bs_code_name(int code);

/* The library version ("0.1.0"). Static string. */
BLINDSYNC_C_API const char* bs_version(void);

/* Frees a string returned by this API (NULL is ignored). */
BLINDSYNC_C_API void bs_string_free(char* text);

/* ---- Client ------------------------------------------------------------------------------- */

typedef struct bs_client bs_client; /* opaque */

/* Called on the library's worker thread when the event queue goes from empty to non-empty.
 * It must only wake the app (signal a condition variable, write to a pipe, post to a UI loop)
 * and return quickly: the only bs_* function it may call is bs_set_notify. */
typedef void (*bs_notify_fn)(void* user);

/* Client settings. A value <= 0 means the default, except backoff_jitter_ms, where 0 means no
 * jitter and a negative value the default. */
typedef struct bs_client_options {
  int64_t request_timeout_ms;  /* per relay request; default 15000 */
  int64_t connect_timeout_ms;  /* WebSocket connect; default 10000 */
  int64_t backoff_base_ms;     /* reconnect: first delay, doubled per attempt; default 1000 */
  int64_t backoff_cap_ms;      /* ... the doubling stops here; default 30000 */
  int64_t backoff_jitter_ms;   /* ... then 0..jitter of random delay is added; default 5000 */
  size_t max_queued_events;    /* past it the worker stops fetching until the app polls;
                                  default 10000 (0: default) */
  bs_notify_fn notify;         /* optional (NULL): see bs_notify_fn */
  void* notify_user;           /* passed to notify */
} bs_client_options;

/* Fills *options with the defaults. Call it before setting fields, so that code keeps working
 * when fields are added. */
BLINDSYNC_C_API void bs_client_options_init(bs_client_options* options);

/* Opens (creating if missing, 0700) the device home directory and starts the worker thread.
 * options may be NULL (defaults). On success *out receives a client to release with
 * bs_client_close; on failure *out is set to NULL. Relays are reached over WebSocket (ws://). */
BLINDSYNC_C_API int bs_client_open(const char* home_dir, const bs_client_options* options,
                                   bs_client** out, bs_error* err);

/* Stops the worker (closing relay sessions cleanly) and frees the client. Whatever was pushed
 * but not yet acknowledged stays in the durable outbox for the next open. Blobs handed out by
 * bs_poll_event but not committed are delivered again next time. NULL is ignored.
 * REQUIRES: no other call on this client is running or will run; not called from the notify
 * callback. After it returns the notify callback is never called again. */
BLINDSYNC_C_API void bs_client_close(bs_client* client);

/* Replaces the notify callback (NULL removes it). When this returns, the previous callback is
 * not running and will not be called again (unless this is called from inside the callback
 * itself, which is allowed and then only replaces it). The callback fires on the queue's
 * empty-to-non-empty transition only: drain the queue once after setting it. */
BLINDSYNC_C_API int bs_set_notify(bs_client* client, bs_notify_fn notify, void* user, bs_error* err);

/* ---- Identity ----------------------------------------------------------------------------- */

#define BS_NAME_MAX 64 /* device names, bytes of UTF-8 */

typedef struct bs_identity {
  char device_id[65];           /* hex */
  char name[BS_NAME_MAX + 1];
} bs_identity;

/* Makes this home's device identity (an Ed25519 key pair) named name (1..64 bytes).
 * BS_ERR_ALREADY_EXISTS if the home has one. out may be NULL.
 * Waits up to timeout_ms (<= 0: no limit); on BS_ERR_TIMEOUT the call may still complete later. */
BLINDSYNC_C_API int bs_identity_create(bs_client* client, const char* name, int64_t timeout_ms,
                                       bs_identity* out, bs_error* err);

/* Copies the identity into *out. Returns 1 if the home has one, 0 if not (*out untouched),
 * or a negative value if an argument is NULL. Never blocks on the network. */
BLINDSYNC_C_API int bs_identity_get(bs_client* client, bs_identity* out);

/* ---- Groups ------------------------------------------------------------------------------- */

typedef struct bs_group_info {
  char group_id[65];  /* hex */
  char relay_id[65];  /* hex, the primary relay's pinned id */
  char* name;         /* owned: freed by bs_group_info_free */
  char* relay_url;    /* owned: the primary relay */
  uint64_t cursor;    /* last cursor handed to the app (primary relay) */
} bs_group_info;

/* Frees the strings of *info (not info itself) and zeroes them. NULL is ignored. */
BLINDSYNC_C_API void bs_group_info_free(bs_group_info* info);

/* Creates a group on relay_urls[0..n_relays) (the first is the primary; each is contacted to
 * learn and pin its relay id). name may be NULL or "" for a default name.
 * On success: *out_group (may be NULL) describes it (free with bs_group_info_free), and
 * *out_invite_link (may be NULL) receives the invite link (free with bs_string_free).
 * The link contains the group secret: anyone holding it can join. Never log it.
 * Waits up to timeout_ms (<= 0: no limit). REQUIRES: an identity (bs_identity_create). */
BLINDSYNC_C_API int bs_group_create(bs_client* client, const char* const* relay_urls, size_t n_relays,
                                    const char* name, int64_t timeout_ms, bs_group_info* out_group,
                                    char** out_invite_link, bs_error* err);

/* Joins the group of an invite link (BS_ERR_EXPIRED, BS_ERR_INVALID_ARGUMENT,
 * BS_ERR_ALREADY_EXISTS). *out_group (may be NULL): free with bs_group_info_free.
 * Waits up to timeout_ms (<= 0: no limit). */
BLINDSYNC_C_API int bs_group_join(bs_client* client, const char* invite_link, int64_t timeout_ms,
                                  bs_group_info* out_group, bs_error* err);

/* Lists this device's groups: *out_groups receives an array of *out_count entries (NULL when
 * there are none), to free with bs_group_list_free(array, count). */
BLINDSYNC_C_API int bs_groups_list(bs_client* client, bs_group_info** out_groups, size_t* out_count,
                                   bs_error* err);

/* Frees an array returned by bs_groups_list. NULL is ignored. */
BLINDSYNC_C_API void bs_group_list_free(bs_group_info* groups, size_t count);

/* ---- Push --------------------------------------------------------------------------------- */

/* Encrypts data[0..len) for the group (hex id) and appends it to the durable outbox. Returns
 * once it is on disk: a crash afterwards loses nothing; the worker sends it when a relay is
 * reachable and BS_EVENT_BLOB_PUSHED reports the relay's ack. ttl_seconds 0 = relay default.
 * out_blob_id (may be NULL) receives the blob id (32 hex characters + NUL).
 * Blocks on local disk only. data may be NULL when len is 0. */
BLINDSYNC_C_API int bs_push(bs_client* client, const char* group_id_hex, const void* data, size_t len,
                            uint32_t ttl_seconds, char out_blob_id[33], bs_error* err);

/* ---- Events ------------------------------------------------------------------------------- */

typedef enum bs_event_kind {
  BS_EVENT_NONE = 0,
  BS_EVENT_CONNECTED = 1,      /* group, relay_url */
  BS_EVENT_DISCONNECTED = 2,   /* group, relay_url, code, message */
  BS_EVENT_RECONNECTING = 3,   /* group, relay_url, attempt, delay_ms */
  BS_EVENT_BLOB_PUSHED = 4,    /* group, blob_id, cursor, duplicate, relay_url */
  BS_EVENT_BLOB_RECEIVED = 5,  /* group, blob_id, cursor, sender_id, timestamp_ms, data, data_len */
  BS_EVENT_ERROR = 6,          /* group (may be ""), code, message */
  BS_EVENT_OUTBOX_CHANGED = 7, /* outbox_size */
  /* group, relay_url, cursor: that relay's link finished pulling with nothing more to fetch (after
   * connecting, reconnecting or any re-pull); every blob the relay held was handed out before it. */
  BS_EVENT_CAUGHT_UP = 8,
  /* group, blob_id, relay_url: the outbox gave up delivering the blob to that relay (another relay
   * stored it longer ago than the retry limit, 30 days); OUTBOX_CHANGED follows if the blob left
   * the outbox. */
  BS_EVENT_DELIVERY_ABANDONED = 9
  /* New kinds are appended; an app should ignore kinds it does not know. */
} bs_event_kind;

/* One event. Fields a kind does not use are zero / "" / NULL. The pointers (data, relay_url,
 * message) are owned by the event and valid until bs_event_free. */
typedef struct bs_event {
  int kind;                 /* a bs_event_kind */
  char group_id[65];        /* hex, "" when none */
  char blob_id[33];         /* hex, "" when none */
  char sender_id[65];       /* hex device id of the sender, "" when none */
  uint64_t cursor;          /* BLOB_PUSHED / BLOB_RECEIVED: the blob's; CAUGHT_UP: handled so far */
  uint64_t timestamp_ms;    /* relay time of a received blob */
  int duplicate;            /* BLOB_PUSHED: the relay already had it */
  uint32_t attempt;         /* RECONNECTING */
  int64_t delay_ms;         /* RECONNECTING */
  uint64_t outbox_size;     /* OUTBOX_CHANGED: blobs waiting, all groups */
  int code;                 /* DISCONNECTED / ERROR: a BS_ERR_* code */
  const char* message;      /* DISCONNECTED / ERROR: never NULL ("" when none) */
  const char* relay_url;    /* never NULL ("" when none) */
  const uint8_t* data;      /* BLOB_RECEIVED: decrypted payload (NULL when empty) */
  size_t data_len;
  void* internal_;          /* private to the library */
} bs_event;

/* Takes the oldest event, if any, into *out. Returns 1 when *out holds an event (release it with
 * bs_event_free), 0 when the queue is empty (*out is zeroed; nothing to free), or a negative
 * value (-BS_ERR_*) on failure (*out zeroed). Also commits the blob handed out by the previous
 * call. Never blocks on the network. */
BLINDSYNC_C_API int bs_poll_event(bs_client* client, bs_event* out);

/* Like bs_poll_event, but when the queue is empty waits up to timeout_ms (>= 0) for an event.
 * Returns 1, 0 (timed out), or a negative value. Works with or without a notify callback. */
BLINDSYNC_C_API int bs_wait_event(bs_client* client, int64_t timeout_ms, bs_event* out);

/* Releases what an event owns and zeroes *out. NULL and zeroed events are ignored. */
BLINDSYNC_C_API void bs_event_free(bs_event* event);

/* Commits the blobs handed out so far (persists the cursor) without taking more events. */
BLINDSYNC_C_API int bs_commit(bs_client* client, bs_error* err);

/* ---- Status ------------------------------------------------------------------------------- */

/* A JSON document describing the client:
 *   {"device": {"device_id": hex, "name": str} | null,
 *    "groups": [{"group_id", "name", "relay_url", "relay_id", "cursor", "epoch", "outbox",
 *                "relays": [{"url", "state", "cursor", "relay_max_cursor"}]}]}
 * state is "disconnected", "connecting", "connected" or "backing_off". cursor is this device's
 * committed cursor at the relay, relay_max_cursor the relay's newest cursor as last seen since the
 * client opened (0 before). Contains no secrets.
 * Returns a string to free with bs_string_free, or NULL on failure (then *err says why). */
BLINDSYNC_C_API char* bs_status_json(bs_client* client, bs_error* err);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BLINDSYNC_C_BLINDSYNC_H_ */
