#!/usr/bin/env python3
"""Python ctypes over libblindsync.so, against a real relay (standard library only).

    test_ctypes.py --lib path/to/libblindsync.so --url ws://HOST:PORT/v1/sync --work DIR

Binds the C API the way a Python app would, then checks argument errors and a real sync between
two device homes: create/join, binary pushes received intact in cursor order, the notify
callback, the cursor surviving a reopen, and delivery of a blob pushed while the reader was
closed. Run by tests/c_api/run_with_relay.sh (which starts the relay).
"""
import argparse
import ctypes
import json
import os
import sys
import threading
import time
import unittest

ARGS = None
LIB = None

BS_OK = 0
BS_ERR_INVALID_ARGUMENT = 9000
BS_ERR_ALREADY_EXISTS = 9002
BS_EVENT_BLOB_PUSHED = 4
BS_EVENT_BLOB_RECEIVED = 5

CALL_TIMEOUT_MS = 30000
RECEIVE_DEADLINE_S = 60


class Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char * 256)]


NOTIFY_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class ClientOptions(ctypes.Structure):
    _fields_ = [
        ("request_timeout_ms", ctypes.c_int64),
        ("connect_timeout_ms", ctypes.c_int64),
        ("backoff_base_ms", ctypes.c_int64),
        ("backoff_cap_ms", ctypes.c_int64),
        ("backoff_jitter_ms", ctypes.c_int64),
        ("max_queued_events", ctypes.c_size_t),
        ("notify", NOTIFY_FN),
        ("notify_user", ctypes.c_void_p),
    ]


class Identity(ctypes.Structure):
    _fields_ = [("device_id", ctypes.c_char * 65), ("name", ctypes.c_char * 65)]


class GroupInfo(ctypes.Structure):
    # name / relay_url are malloc'd by the library: c_void_p keeps the pointer for the free call.
    _fields_ = [
        ("group_id", ctypes.c_char * 65),
        ("relay_id", ctypes.c_char * 65),
        ("name", ctypes.c_void_p),
        ("relay_url", ctypes.c_void_p),
        ("cursor", ctypes.c_uint64),
    ]


class Event(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_int),
        ("group_id", ctypes.c_char * 65),
        ("blob_id", ctypes.c_char * 33),
        ("sender_id", ctypes.c_char * 65),
        ("cursor", ctypes.c_uint64),
        ("timestamp_ms", ctypes.c_uint64),
        ("duplicate", ctypes.c_int),
        ("attempt", ctypes.c_uint32),
        ("delay_ms", ctypes.c_int64),
        ("outbox_size", ctypes.c_uint64),
        ("code", ctypes.c_int),
        ("message", ctypes.c_char_p),
        ("relay_url", ctypes.c_char_p),
        ("data", ctypes.c_void_p),
        ("data_len", ctypes.c_size_t),
        ("internal_", ctypes.c_void_p),
    ]


def bind(path):
    lib = ctypes.CDLL(path)
    c = ctypes
    sigs = {
        "bs_version": (c.c_char_p, []),
        "bs_code_name": (c.c_char_p, [c.c_int]),
        "bs_string_free": (None, [c.c_void_p]),
        "bs_client_options_init": (None, [c.POINTER(ClientOptions)]),
        "bs_client_open": (c.c_int, [c.c_char_p, c.POINTER(ClientOptions), c.POINTER(c.c_void_p), c.POINTER(Error)]),
        "bs_client_close": (None, [c.c_void_p]),
        "bs_set_notify": (c.c_int, [c.c_void_p, NOTIFY_FN, c.c_void_p, c.POINTER(Error)]),
        "bs_identity_create": (c.c_int, [c.c_void_p, c.c_char_p, c.c_int64, c.POINTER(Identity), c.POINTER(Error)]),
        "bs_identity_get": (c.c_int, [c.c_void_p, c.POINTER(Identity)]),
        "bs_group_info_free": (None, [c.POINTER(GroupInfo)]),
        "bs_group_create": (c.c_int, [c.c_void_p, c.POINTER(c.c_char_p), c.c_size_t, c.c_char_p, c.c_int64,
                                      c.POINTER(GroupInfo), c.POINTER(c.c_void_p), c.POINTER(Error)]),
        "bs_group_join": (c.c_int, [c.c_void_p, c.c_char_p, c.c_int64, c.POINTER(GroupInfo), c.POINTER(Error)]),
        "bs_groups_list": (c.c_int, [c.c_void_p, c.POINTER(c.POINTER(GroupInfo)), c.POINTER(c.c_size_t),
                                     c.POINTER(Error)]),
        "bs_group_list_free": (None, [c.POINTER(GroupInfo), c.c_size_t]),
        "bs_push": (c.c_int, [c.c_void_p, c.c_char_p, c.c_void_p, c.c_size_t, c.c_uint32, c.c_char_p,
                              c.POINTER(Error)]),
        "bs_poll_event": (c.c_int, [c.c_void_p, c.POINTER(Event)]),
        "bs_wait_event": (c.c_int, [c.c_void_p, c.c_int64, c.POINTER(Event)]),
        "bs_event_free": (None, [c.POINTER(Event)]),
        "bs_commit": (c.c_int, [c.c_void_p, c.POINTER(Error)]),
        "bs_status_json": (c.c_void_p, [c.c_void_p, c.POINTER(Error)]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


class BlindsyncError(Exception):
    def __init__(self, what, err):
        self.code = err.code
        super().__init__("%s: %s (%d): %s" % (what, LIB.bs_code_name(err.code).decode(), err.code,
                                              err.message.decode(errors="replace")))


def check(what, rc, err):
    if rc != BS_OK:
        raise BlindsyncError(what, err)


class Device:
    """A small Pythonic wrapper, as an app would write one."""

    def __init__(self, home, notify=None):
        self.notify_fn = NOTIFY_FN(notify) if notify else NOTIFY_FN()  # keep alive while in use
        opts = ClientOptions()
        LIB.bs_client_options_init(ctypes.byref(opts))
        opts.backoff_base_ms = 200
        opts.backoff_jitter_ms = 100
        opts.notify = self.notify_fn
        handle = ctypes.c_void_p()
        err = Error()
        check("bs_client_open", LIB.bs_client_open(home.encode(), ctypes.byref(opts), ctypes.byref(handle),
                                                   ctypes.byref(err)), err)
        self.handle = handle

    def close(self):
        if self.handle:
            err = Error()
            LIB.bs_set_notify(self.handle, NOTIFY_FN(), None, ctypes.byref(err))
            LIB.bs_client_close(self.handle)
            self.handle = None

    def identity(self, name):
        ident = Identity()
        if LIB.bs_identity_get(self.handle, ctypes.byref(ident)) == 1:
            return ident.device_id.decode()
        err = Error()
        check("bs_identity_create", LIB.bs_identity_create(self.handle, name.encode(), CALL_TIMEOUT_MS,
                                                           ctypes.byref(ident), ctypes.byref(err)), err)
        return ident.device_id.decode()

    def create_group(self, urls, name):
        arr = (ctypes.c_char_p * len(urls))(*[u.encode() for u in urls])
        info = GroupInfo()
        link = ctypes.c_void_p()
        err = Error()
        check("bs_group_create", LIB.bs_group_create(self.handle, arr, len(urls), name.encode(), CALL_TIMEOUT_MS,
                                                     ctypes.byref(info), ctypes.byref(link), ctypes.byref(err)), err)
        try:
            return info.group_id.decode(), ctypes.string_at(link.value).decode(), ctypes.string_at(info.name).decode()
        finally:
            LIB.bs_group_info_free(ctypes.byref(info))
            LIB.bs_string_free(link)

    def join(self, link):
        info = GroupInfo()
        err = Error()
        check("bs_group_join", LIB.bs_group_join(self.handle, link.encode(), CALL_TIMEOUT_MS, ctypes.byref(info),
                                                 ctypes.byref(err)), err)
        try:
            return info.group_id.decode(), ctypes.string_at(info.relay_url).decode()
        finally:
            LIB.bs_group_info_free(ctypes.byref(info))

    def groups(self):
        arr = ctypes.POINTER(GroupInfo)()
        count = ctypes.c_size_t()
        err = Error()
        check("bs_groups_list", LIB.bs_groups_list(self.handle, ctypes.byref(arr), ctypes.byref(count),
                                                   ctypes.byref(err)), err)
        try:
            return [(arr[i].group_id.decode(), ctypes.string_at(arr[i].name).decode(), arr[i].cursor)
                    for i in range(count.value)]
        finally:
            LIB.bs_group_list_free(arr, count)

    def push(self, group, data):
        blob_id = ctypes.create_string_buffer(33)
        err = Error()
        buf = ctypes.create_string_buffer(data, len(data)) if data else None
        check("bs_push", LIB.bs_push(self.handle, group.encode(), buf, len(data), 0, blob_id, ctypes.byref(err)), err)
        return blob_id.value.decode()

    def wait_event(self, timeout_ms):
        """Returns a dict for one event, or None when none came in time."""
        ev = Event()
        rc = LIB.bs_wait_event(self.handle, timeout_ms, ctypes.byref(ev))
        if rc < 0:
            raise RuntimeError("bs_wait_event failed: %s" % LIB.bs_code_name(-rc).decode())
        if rc == 0:
            return None
        try:
            return {
                "kind": ev.kind,
                "group": ev.group_id.decode(),
                "blob_id": ev.blob_id.decode(),
                "sender": ev.sender_id.decode(),
                "cursor": ev.cursor,
                "data": ctypes.string_at(ev.data, ev.data_len) if ev.data_len else b"",
                "code": ev.code,
                "message": ev.message.decode(errors="replace"),
            }
        finally:
            LIB.bs_event_free(ctypes.byref(ev))

    def receive(self, want_ids):
        """Waits (bounded) until every blob id in want_ids was received; returns them in arrival order."""
        got = []
        deadline = time.monotonic() + RECEIVE_DEADLINE_S
        pending = set(want_ids)
        while pending and time.monotonic() < deadline:
            ev = self.wait_event(250)
            if ev and ev["kind"] == BS_EVENT_BLOB_RECEIVED:
                got.append(ev)
                pending.discard(ev["blob_id"])
        if pending:
            raise AssertionError("blobs not received within %d s: %s" % (RECEIVE_DEADLINE_S, sorted(pending)))
        return got

    def commit(self):
        err = Error()
        check("bs_commit", LIB.bs_commit(self.handle, ctypes.byref(err)), err)

    def status(self):
        err = Error()
        ptr = LIB.bs_status_json(self.handle, ctypes.byref(err))
        if not ptr:
            raise BlindsyncError("bs_status_json", err)
        try:
            return json.loads(ctypes.string_at(ptr).decode())
        finally:
            LIB.bs_string_free(ptr)


def home(name):
    return os.path.join(ARGS.work, name)


class ArgumentErrors(unittest.TestCase):
    def test_version_and_code_names_are_static_strings(self):
        self.assertRegex(LIB.bs_version().decode(), r"^\d+\.\d+\.\d+")
        self.assertEqual(LIB.bs_code_name(BS_ERR_INVALID_ARGUMENT), b"INVALID_ARGUMENT")
        self.assertEqual(LIB.bs_code_name(0), b"OK")
        self.assertEqual(LIB.bs_code_name(-5), b"UNKNOWN")

    def test_open_rejects_a_null_home(self):
        handle = ctypes.c_void_p(1)
        err = Error()
        rc = LIB.bs_client_open(None, None, ctypes.byref(handle), ctypes.byref(err))
        self.assertEqual(rc, BS_ERR_INVALID_ARGUMENT)
        self.assertEqual(err.code, BS_ERR_INVALID_ARGUMENT)
        self.assertFalse(handle.value)

    def test_push_and_join_reject_malformed_input_with_a_message(self):
        dev = Device(home("args"))
        try:
            dev.identity("args")
            with self.assertRaises(BlindsyncError) as bad_group:
                dev.push("not-hex", b"x")
            self.assertEqual(bad_group.exception.code, BS_ERR_INVALID_ARGUMENT)
            self.assertIn("group id", str(bad_group.exception))
            with self.assertRaises(BlindsyncError) as bad_link:
                dev.join("blindsync://join/%%%garbage")
            self.assertEqual(bad_link.exception.code, BS_ERR_INVALID_ARGUMENT)
            ev = Event()
            self.assertEqual(LIB.bs_poll_event(dev.handle, ctypes.byref(ev)), 0)
            self.assertEqual(ev.kind, 0)
        finally:
            dev.close()

    def test_a_second_identity_is_refused(self):
        dev = Device(home("twice"))
        try:
            dev.identity("first")
            ident = Identity()
            err = Error()
            rc = LIB.bs_identity_create(dev.handle, b"second", CALL_TIMEOUT_MS, ctypes.byref(ident), ctypes.byref(err))
            self.assertEqual(rc, BS_ERR_ALREADY_EXISTS)
            self.assertEqual(bs_name(err.code), "ALREADY_EXISTS")
        finally:
            dev.close()


def bs_name(code):
    return LIB.bs_code_name(code).decode()


class SyncThroughRelay(unittest.TestCase):
    def test_two_devices_exchange_binary_blobs_in_order_and_keep_their_cursor(self):
        notified = threading.Event()
        alice = Device(home("alice"))
        bob = Device(home("bob"), notify=lambda _user: notified.set())
        try:
            alice_id = alice.identity("alice")
            bob.identity("bob")
            group, link, name = alice.create_group([ARGS.url], "py-group")
            self.assertEqual(len(group), 64)
            self.assertEqual(name, "py-group")
            self.assertTrue(link.startswith("blindsync://join/"))
            joined, relay_url = bob.join(link)
            self.assertEqual(joined, group)
            self.assertEqual(relay_url, ARGS.url)
            self.assertEqual([g[0] for g in bob.groups()], [group])

            payloads = [b"first", bytes(range(256)) * 4, b"\x00embedded\x00nul\x00", os.urandom(100_000)]
            ids = [alice.push(group, p) for p in payloads]
            self.assertEqual(len(set(ids)), len(ids))

            got = bob.receive(ids)
            self.assertEqual([e["blob_id"] for e in got], ids)  # pushed in order -> cursor order
            self.assertEqual([e["data"] for e in got], payloads)
            self.assertTrue(all(e["sender"] == alice_id for e in got))
            self.assertTrue(all(e["group"] == group for e in got))
            cursors = [e["cursor"] for e in got]
            self.assertEqual(cursors, sorted(cursors))
            self.assertTrue(notified.is_set(), "the notify callback never fired")
            bob.commit()

            status = bob.status()
            self.assertEqual(status["device"]["name"], "bob")
            self.assertEqual(status["groups"][0]["group_id"], group)
            self.assertEqual(status["groups"][0]["cursor"], cursors[-1])
        finally:
            bob.close()

        # Pushed while bob is closed: delivered from the relay when bob comes back, and the
        # committed cursor means nothing already taken is delivered again.
        late = alice.push(group, b"while you were away")
        bob = Device(home("bob"))
        try:
            self.assertEqual(bob.groups()[0][2], cursors[-1])
            got = bob.receive([late])
            self.assertEqual([e["blob_id"] for e in got], [late])
            self.assertEqual(got[0]["data"], b"while you were away")
            self.assertGreater(got[0]["cursor"], cursors[-1])
        finally:
            bob.close()
            alice.close()


def main():
    global ARGS, LIB
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--work", required=True)
    ARGS, rest = parser.parse_known_args()
    LIB = bind(ARGS.lib)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
