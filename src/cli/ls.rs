//! `edgesift ls`: lists stored samples, newest first, with filters.

use anyhow::{anyhow, bail};
use edgesift::store::{Order, Query, StoreConfig, StoreReader};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

#[derive(clap::Args)]
pub struct LsArgs {
    /// The store's data directory.
    #[arg(long, default_value_os_t = StoreConfig::default().dir)]
    dir: PathBuf,
    /// Captured at or after this time: RFC 3339 (`2026-11-24T10:00:00Z`, `...+01:00`) or a UTC
    /// date (`2026-11-24`).
    #[arg(long, value_parser = parse_time, conflicts_with = "last")]
    since: Option<SystemTime>,
    /// Captured before this time (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    until: Option<SystemTime>,
    /// Captured within this long before now: `90s`, `30m`, `1h`, `2d`, `1h30m`.
    #[arg(long, value_parser = parse_duration)]
    last: Option<Duration>,
    /// Only samples with an instance of this class name.
    #[arg(long)]
    class: Option<String>,
    /// Only samples kept for this reason (e.g. `rare_class`).
    #[arg(long)]
    reason: Option<String>,
    /// At most this many samples.
    #[arg(long)]
    limit: Option<usize>,
    /// Oldest first (default newest first).
    #[arg(long)]
    oldest_first: bool,
    /// One JSON object per line (the sidecar layout with absolute paths).
    #[arg(long)]
    json: bool,
}

pub fn run(a: LsArgs) -> anyhow::Result<ExitCode> {
    let reader = StoreReader::open(&a.dir)?;
    let since = match (a.since, a.last) {
        (Some(t), _) => Some(t),
        (None, Some(d)) => Some(SystemTime::now() - d),
        (None, None) => None,
    };
    let q = Query {
        since,
        until: a.until,
        class: a.class,
        reason: a.reason,
        limit: a.limit,
        order: if a.oldest_first {
            Order::OldestFirst
        } else {
            Order::NewestFirst
        },
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    if !a.json {
        writeln!(
            out,
            "{:>8}  {:<24}  {:>5}  {:<20}  {:<28}  image",
            "id", "captured", "value", "reasons", "instances"
        )?;
    }
    for rec in reader.query(&q)? {
        let rec = rec?;
        if a.json {
            serde_json::to_writer(&mut out, &rec.to_json())?;
            writeln!(out)?;
            continue;
        }
        let mut counts: Vec<(String, usize)> = Vec::new();
        for i in &rec.instances {
            match counts.iter_mut().find(|(c, _)| *c == i.class_name) {
                Some((_, n)) => *n += 1,
                None => counts.push((i.class_name.clone(), 1)),
            }
        }
        let instances = counts
            .iter()
            .map(|(c, n)| {
                if *n == 1 {
                    c.clone()
                } else {
                    format!("{c}x{n}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        writeln!(
            out,
            "{:>8}  {:<24}  {:>5.2}  {:<20}  {:<28}  {}",
            rec.id,
            table_time(rec.captured_unix_ns),
            rec.value,
            rec.reasons.join(","),
            instances,
            rec.image.path.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rfc3339(unix_ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(unix_ns as i128)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("@{unix_ns}ns"))
}

/// Millisecond precision, so that the table's columns line up.
fn table_time(unix_ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(unix_ns as i128)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|_| format!("@{unix_ns}ns"))
}

pub fn parse_time(s: &str) -> Result<SystemTime, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(SystemTime::from(t));
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        let t = d
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| e.to_string())?
            .timestamp();
        return Ok(SystemTime::from(t));
    }
    Err(format!(
        "`{s}` is neither RFC 3339 (2026-11-24T10:00:00Z) nor a date (2026-11-24)"
    ))
}

/// `90s`, `30m`, `1h`, `2d`, `1w`, or several of them run together (`1h30m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let inner = || -> anyhow::Result<Duration> {
        let mut total = 0u64;
        let mut num = String::new();
        if s.is_empty() {
            bail!("empty");
        }
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => bail!("unknown unit `{c}`"),
            };
            let n: u64 = num
                .parse()
                .map_err(|_| anyhow!("a number must precede `{c}`"))?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| anyhow!("too long"))?;
            num.clear();
        }
        if !num.is_empty() {
            bail!("`{num}` lacks a unit (s, m, h, d, w)");
        }
        Ok(Duration::from_secs(total))
    };
    inner().map_err(|e| format!("`{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("3y").is_err());
    }

    #[test]
    fn times() {
        let t = parse_time("2026-11-24T11:15:02.5+01:00").unwrap();
        let u = parse_time("2026-11-24T10:15:02.5Z").unwrap();
        assert_eq!(t, u);
        assert_eq!(
            parse_time("2026-11-24").unwrap(),
            parse_time("2026-11-24T00:00:00Z").unwrap()
        );
        assert!(parse_time("yesterday").is_err());
    }
}
