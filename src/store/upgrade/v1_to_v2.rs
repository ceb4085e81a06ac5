//! Version 2: `[refine]`'s masks get a place of their own (a fourth file per sample,
//! `<stem>.refined.png`, and a refined RLE per instance) instead of the selection record.
//! Existing samples have none: the new columns are null for them.

use rusqlite::Transaction;

pub(super) fn run(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "alter table sample add column refined_bytes integer;
         alter table sample add column refined_sha256 blob
           check (refined_sha256 is null or length(refined_sha256) = 32);
         alter table instance add column refined_iou real;
         alter table instance add column refined_rle text;",
    )
}
