-- The edgesift store index, schema version 1 (see store/mod.rs for the invariants it keeps
-- with the files under samples/, and store/upgrade/ for how it changes).
--
-- Units are in column names. Times: `_unix_ns` is wall-clock nanoseconds since 1970-01-01 UTC,
-- `_ns` alone is the capture source's monotonic clock.

-- Exactly one row.
create table meta (
  id integer primary key check (id = 1),
  schema_version integer not null,
  -- Every sample file with an id >= this belongs to a Store that has not committed (yet).
  next_sample_id integer not null check (next_sample_id > 0),
  created_unix_ns integer not null
);

-- One kept frame; its three files are samples/<dir>/<stem>.{<image_ext>,masks.png,json}.
create table sample (
  id integer primary key,
  dir text not null,
  stem text not null,
  image_ext text not null check (image_ext in ('jpg', 'png')),
  width integer not null,
  height integer not null,

  -- Position of the frame in its capture stream.
  seq integer not null,
  captured_unix_ns integer not null,
  captured_ns integer not null,
  source text not null,
  source_file text,
  source_index integer not null,
  model_name text not null,
  model_sha256 text not null,

  -- Selection value (drives `lowest_value` eviction) and every strategy's verdict, verbatim.
  value real not null,
  selection_json text not null,

  image_bytes integer not null,
  image_sha256 blob not null check (length(image_sha256) = 32),
  masks_bytes integer not null,
  masks_sha256 blob not null check (length(masks_sha256) = 32),
  meta_bytes integer not null,
  meta_sha256 blob not null check (length(meta_sha256) = 32),
  -- The three files in whole 4 KiB blocks: what the quota counts.
  quota_bytes integer not null,

  unique (dir, stem)
);

create index sample_captured on sample (captured_unix_ns);
create index sample_value on sample (value, id);

-- One instance of a sample; `idx` + 1 is its value in the instance-id PNG.
create table instance (
  sample_id integer not null references sample (id) on delete cascade,
  idx integer not null,
  class_id integer not null,
  class_name text not null,
  score real not null,
  x1 real not null,
  y1 real not null,
  x2 real not null,
  y2 real not null,
  -- Mask pixels, and the mask as pycocotools' compressed RLE string (size: the sample's).
  area integer not null,
  rle text not null,
  primary key (sample_id, idx)
) without rowid;

create index instance_class on instance (class_name, sample_id);

-- Why a sample was kept: short tags such as `rare_class`.
create table reason (
  sample_id integer not null references sample (id) on delete cascade,
  reason text not null,
  primary key (sample_id, reason)
) without rowid;

create index reason_by_name on reason (reason, sample_id);

-- Samples being evicted: their row is gone, their files may not be yet.
create table garbage (
  sample_id integer primary key,
  dir text not null,
  stem text not null,
  image_ext text not null
);
