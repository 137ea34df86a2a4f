// The writer's prepared statements (private to relay/src/store: sqlite_writer.cpp and
// sqlite_writer_journal.cpp share them).
#pragma once

#include "store/sqlite_db.h"
#include "store/sqlite_writer.h"

namespace blindsync::relay::sqlite {

struct SqliteWriter::Statements {
  Database db;
  Statement begin;
  Statement commit;
  Statement select_group;
  Statement insert_group;
  Statement insert_blob;
  Statement select_duplicate;
  Statement select_max_blob_id;
  Statement update_group;
  Statement device_exists;
  Statement count_devices;
  Statement upsert_device;
  Statement ack_device;
  Statement select_blob_owner;
  Statement delete_blob;
  Statement subtract_group;
  // cleanup
  Statement clear_doomed;
  Statement fill_expired;
  Statement fill_range;
  Statement doomed_totals;
  Statement subtract_doomed;
  Statement delete_doomed;
  Statement plan_acked;
  Statement set_ack_dropped;
  Statement delete_stale_devices;
  Statement delete_empty_groups;
  // segments
  Statement add_to_segment;
  Statement subtract_from_segment;
  Statement subtract_doomed_segments;
  Statement set_replay_from;
  Statement select_segments;
  Statement delete_segment;
  Statement select_segment_rows;
  Statement inline_payload;
};

}  // namespace blindsync::relay::sqlite
